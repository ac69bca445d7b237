from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.domain.geo import Point
from server.domain.i18n import Localized


@dataclass(frozen=True, slots=True)
class District:
    id: str
    name: Localized
    description: Localized
    center: Point
    boundary: list[list[float]]

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> District:
        lng, lat = doc["center"]["coordinates"]
        return cls(doc["_id"], doc["name"], doc.get("description") or {}, Point(float(lat), float(lng)),
                   doc["boundary"]["coordinates"][0])


@dataclass(frozen=True, slots=True)
class Area:
    id: str
    district_id: str
    name: Localized
    center: Point
    capacity: int
    version: int = 0

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Area:
        lng, lat = doc["center"]["coordinates"]
        return cls(doc["_id"], doc["district_id"], doc["name"], Point(float(lat), float(lng)),
                   int(doc["capacity"]), int(doc.get("version") or 0))
