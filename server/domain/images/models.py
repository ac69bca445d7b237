"""Pictures of merchants, 深圳手信 products and festivals: what is stored about one, and its URLs.

The bytes live in GridFS, one WebP file per width, under the image's `key`: a hash of what the image
shows. A new picture therefore gets new URLs, and a URL can be cached for a year (`immutable`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from server.domain.i18n import Localized

OWNER_KINDS = ("merchant", "product", "festival")
WIDTHS = (320, 640, 1024, 1600)  # phone, phone at 2x / tablet, desktop, desktop at 2x
DEFAULT_WIDTH = 640  # the `src` of an <img>: a phone's 2x card
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_PER_OWNER = 8
KEY = re.compile(r"^[0-9a-f]{24}$")


def owner_ref(kind: str, owner_id: str) -> str:
    """One string per owner of any kind: the `_id` of its list of uploaded pictures (`images_by_owner`)."""
    return f"{kind}:{owner_id}"


def split_ref(ref: str) -> tuple[str, str]:
    kind, _, owner_id = ref.partition(":")
    return kind, owner_id


def content_image_id(kind: str, owner_id: str) -> str:
    """The `_id` of the picture content/ gives an owner (server/content/pictures.py): known from the owner
    alone, so a page reads it by primary key without any list."""
    return f"content-{kind}-{owner_id}"


def widths_for(width: int) -> tuple[int, ...]:
    """The widths an image is served at: the standard ones below its own, then its own (at most the largest)."""
    top = min(width, WIDTHS[-1])
    return (*(w for w in WIDTHS if w < top), top)


def url(key: str, width: int) -> str:
    return f"/img/{key}/{width}.webp"


@dataclass(frozen=True, slots=True)
class Image:
    id: str
    key: str
    owner_kind: str
    owner_id: str
    alt: Localized
    width: int  # of the largest variant; the others keep its aspect ratio
    height: int
    widths: tuple[int, ...]
    generated: bool = False  # drawn by server/domain/images/artwork.py on first request

    @property
    def src(self) -> str:
        fitting = [w for w in self.widths if w <= DEFAULT_WIDTH]
        return url(self.key, fitting[-1] if fitting else self.widths[0])

    @property
    def srcset(self) -> str:
        return ", ".join(f"{url(self.key, w)} {w}w" for w in self.widths)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Image:
        return cls(
            id=str(doc["_id"]), key=str(doc["key"]), owner_kind=str(doc["owner_kind"]), owner_id=str(doc["owner_id"]),
            alt=doc.get("alt") or {}, width=int(doc["width"]), height=int(doc["height"]),
            widths=tuple(int(w) for w in doc["widths"]), generated=bool(doc.get("generated")),
        )
