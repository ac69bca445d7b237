"""Field checks shared by the service functions; problems are message keys (server/domain/messages.py)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from server.domain.i18n import LOCALES

CODE = re.compile(r"^[A-Z0-9-]{4,20}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")  # a record's readable key, as content/ and global ids write it


class Problems:
    """Collects per-field problems so a form shows them all at once."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def add(self, field: str, key: str) -> None:
        self.fields.setdefault(field, key)

    def localized(self, field: str, value: dict[str, str] | None, *, required: bool, max_len: int) -> dict[str, str]:
        texts = {k: v.strip() for k, v in (value or {}).items() if k in LOCALES and isinstance(v, str) and v.strip()}
        if required and "zh-CN" not in texts:
            self.add(f"{field}.zh-CN", "required")
        for locale, text in texts.items():
            if len(text) > max_len:
                self.add(f"{field}.{locale}", "too_long")
        return texts

    def integer(self, field: str, value: Any, low: int, high: int, *, required: bool = False) -> int | None:
        if value is None or value == "":
            if required:
                self.add(field, "required")
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.add(field, "not_a_number")
            return None
        if not low <= number <= high:
            self.add(field, "out_of_range")
            return None
        return number

    def moment(self, field: str, value: Any) -> datetime | None:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value
        self.add(field, "required" if value in (None, "") else "bad_datetime")
        return None

    def raise_if_any(self) -> None:
        if self.fields:
            from server.domain.errors import Invalid

            raise Invalid(self.fields)
