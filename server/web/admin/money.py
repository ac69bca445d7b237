"""Money in the back office: merchants type and read yuan ("12.50"); the services keep integer fen.

The form fields are named *_yuan; the services' inputs, errors and stored values say *_fen.
"""

from __future__ import annotations

import re
from typing import Any

YUAN = re.compile(r"^\s*[¥￥]?\s*(\d{1,9})(?:[.．](\d{1,2}))?\s*元?\s*$")


def to_fen(text: str) -> int | str:
    """12 → 1200, "12.5" → 1250, "¥12.50" → 1250; anything else is passed on as typed, for the service to
    reject with its field's error (so a typo is reported, never rounded into another price)."""
    match = YUAN.match(text)
    if not match:
        return text
    cents = (match.group(2) or "").ljust(2, "0")
    return int(match.group(1)) * 100 + int(cents)


def to_yuan(fen: Any) -> str:
    """1250 → "12.50", 1200 → "12"; empty for None."""
    if not isinstance(fen, int):
        return "" if fen is None else str(fen)
    whole, cents = divmod(fen, 100)
    return f"{whole}.{cents:02d}" if cents else str(whole)


def as_yuan(fields: dict[str, Any]) -> dict[str, Any]:
    """The *_fen keys of a service's errors or stored values as the form's *_yuan ones (values in yuan; an
    amount that was no number is reported as no amount, since yuan may have decimals)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key.endswith("_fen"):
            if value == "not_a_number":
                value = "not_an_amount"
            out[key.removesuffix("_fen") + "_yuan"] = value if isinstance(value, str) else to_yuan(value)
        else:
            out[key] = value
    return out
