from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from server.domain.i18n import Localized

KINDS = ("shopping", "food", "jewellery", "auto", "culture")


@dataclass(frozen=True, slots=True)
class Festival:
    id: str
    name: Localized
    description: Localized
    kind: str
    starts_on: date
    ends_on: date
    starts_at: datetime  # local midnight of starts_on, in UTC
    ends_at: datetime  # local midnight after ends_on, in UTC
    district_ids: list[str]
    version: int = 0

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Festival:
        kind = str(doc["kind"])
        if kind not in KINDS:
            raise ValueError(f"festival {doc['_id']}: unknown kind {kind!r}")
        return cls(
            id=doc["_id"], name=doc["name"], description=doc.get("description") or {}, kind=kind,
            starts_on=date.fromisoformat(doc["starts_on"]), ends_on=date.fromisoformat(doc["ends_on"]),
            starts_at=doc["starts_at"], ends_at=doc["ends_at"], district_ids=list(doc["district_ids"]),
            version=int(doc.get("version") or 0),
        )
