"""The pictures of the sample data: one drawn picture per merchant, 深圳手信 product and festival.

Only a record is loaded: its `generated` spec says what to draw, and its key (the URL's) is a hash
of that spec and of the drawing and encoding code, so a change to either gives new URLs. The
picture is drawn and stored in GridFS the first time a browser asks for it
(server/domain/images/service.py::variant), which keeps drawing ~200 pictures off every start.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from server.domain.images import artwork, processing
from server.domain.images.models import content_image_id, owner_ref, widths_for

Doc = dict[str, Any]
DRAWING = (Path(artwork.__file__), Path(processing.__file__))
CONTENT_LAST = 1e12  # uploads sort by their time (~1.7e9): a real photo comes before the drawn placeholder


@cache
def _code_digest() -> bytes:
    h = hashlib.sha256()
    for path in DRAWING:
        h.update(path.read_bytes())
    return h.digest()


def _record(kind: str, owner_id: str, name: dict[str, str], group: str) -> Doc:
    picture = artwork.spec(kind, owner_id, name.get("zh-CN") or owner_id, group)
    key = hashlib.sha256(_code_digest() + json.dumps(picture, sort_keys=True).encode()).hexdigest()[:24]
    width, height = artwork.SIZE
    return {"_id": content_image_id(kind, owner_id), "key": key, "owner_kind": kind, "owner_id": owner_id,
            "owner": owner_ref(kind, owner_id), "alt": dict(name), "width": width, "height": height,
            "widths": list(widths_for(width)), "position": CONTENT_LAST, "generated": picture}


def content_images(merchants: list[Doc], products: list[Doc], festivals: list[Doc]) -> list[Doc]:
    """An image record for each; the alt text is the owner's name (the picture shows its first character)."""
    return [
        *(_record("merchant", m["_id"], m["name"], (m.get("categories") or ["shop"])[0]) for m in merchants),
        *(_record("product", p["_id"], p["name"], p["category"]) for p in products),
        *(_record("festival", f["_id"], f["name"], f["kind"]) for f in festivals),
    ]
