from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from server.domain.i18n import Localized
from server.domain.merchants.hours import SHANGHAI

KINDS = ("shopping", "food", "jewellery", "auto", "culture")


def window(starts_on: date, ends_on: date) -> tuple[datetime, datetime]:
    """UTC bounds of a festival: local midnight of its first day to local midnight after its last."""
    return (datetime.combine(starts_on, time(0), SHANGHAI).astimezone(UTC),
            datetime.combine(ends_on + timedelta(days=1), time(0), SHANGHAI).astimezone(UTC))


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
