from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from server.domain.geo import Point
from server.domain.i18n import Localized
from server.domain.merchants.holiday_hours import closing_at, open_at, parse_exceptions
from server.domain.merchants.hours import DAYS, SLOT, Span, minute_of_week, minutes_to_change, parse_week_cached


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    district_id: str
    area_id: str
    name: Localized
    description: Localized
    address: Localized
    categories: list[str]
    location: Point
    phone: str
    price_level: int
    hours: dict[str, list[str]]
    spans: tuple[Span, ...]
    version: int = 0
    exceptions: dict[date, tuple[Span, ...]] = field(default_factory=dict)

    def open_at(self, at: datetime) -> bool:
        return open_at(self.spans, self.exceptions, at)

    def closes_at(self, at: datetime) -> str | None:
        return closing_at(self.spans, self.exceptions, at)

    def next_turn(self, at: datetime, until: datetime) -> datetime | None:
        """The first instant after `at`, before `until`, at which open-now (and so closes-at) changes; None when
        it does not. Hours and their exceptions are on quarter-hours (hours.py), so checking each is exact."""
        seconds = SLOT * 60
        moment = datetime.fromtimestamp((at.timestamp() // seconds + 1) * seconds, at.tzinfo)
        if not self.exceptions:  # most merchants: the week's spans alone say when, without a walk
            now_open = self.open_at(at)
            if self.open_at(moment) != now_open:
                return moment if moment < until else None
            ahead = minutes_to_change(self.spans, minute_of_week(moment))
            turn = None if ahead is None else moment + timedelta(minutes=ahead)
            return turn if turn is not None and turn < until else None
        return _turn(lambda when: self.open_at(when), self.open_at(at), moment, until)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Merchant:
        lng, lat = doc["location"]["coordinates"]
        hours = {day: list(doc.get("hours", {}).get(day) or []) for day in DAYS}
        return cls(
            id=doc["_id"], district_id=doc["district_id"], area_id=doc["area_id"], name=doc["name"],
            description=doc.get("description") or {}, address=doc.get("address") or {},
            categories=list(doc.get("categories") or []), location=Point(float(lat), float(lng)),
            phone=str(doc.get("phone") or ""), price_level=int(doc.get("price_level") or 0),
            hours=hours, spans=parse_week_cached(hours), version=int(doc.get("version") or 0),
            exceptions=parse_exceptions({e["date"]: e["spans"] for e in doc.get("hours_exceptions") or []}),
        )


def _turn(is_open: Callable[[datetime], bool], now_open: bool, moment: datetime,
          until: datetime) -> datetime | None:
    step = timedelta(minutes=SLOT)
    while moment < until:
        if is_open(moment) != now_open:
            return moment
        moment += step
    return None

