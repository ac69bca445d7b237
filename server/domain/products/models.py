from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.domain.i18n import Localized

CATEGORIES = ("food", "snacks", "tea", "craft", "art", "souvenir", "fashion", "jewellery")


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: Localized
    story: Localized
    category: str
    price_min_fen: int
    price_max_fen: int
    unit: Localized
    sold_by: list[str]
    version: int = 0

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Product:
        return cls(
            id=doc["_id"], name=doc["name"], story=doc.get("story") or {}, category=str(doc["category"]),
            price_min_fen=int(doc["price_min_fen"]), price_max_fen=int(doc["price_max_fen"]),
            unit=doc.get("unit") or {}, sold_by=list(doc.get("sold_by") or []), version=int(doc.get("version") or 0),
        )
