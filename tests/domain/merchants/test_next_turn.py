"""Merchant.next_turn: the first quarter-hour at which open-now changes, for weekly hours and with exceptions."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from server.domain.merchants.hours import SHANGHAI
from server.domain.merchants.models import Merchant

WEEKS = {
    "day": {d: ["10:00-22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "split": {"mon": ["09:00-12:00", "14:00-18:00"], "sat": ["10:00-02:00"]},
    "closed": {},
    "always": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    # across Sunday midnight into Monday's own span, and a day's end meeting the next day's start
    "wrap": {"sun": ["20:00-03:00"], "mon": ["03:00-05:00"], "wed": ["23:00-24:00"], "thu": ["00:00-02:00"]},
}


def merchant(hours: dict[str, list[str]], exceptions: list[dict[str, Any]] | None = None) -> Merchant:
    return Merchant.from_doc({"_id": "m", "district_id": "d", "area_id": "a", "name": {"en": "m"},
                              "location": {"coordinates": [114.0, 22.5]}, "hours": hours,
                              "hours_exceptions": exceptions or []})


def walked(shop: Merchant, at: datetime, until: datetime) -> datetime | None:
    """Minute by minute: what next_turn must agree with."""
    now_open, moment = shop.open_at(at), at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment < until:
        if shop.open_at(moment) != now_open:
            return moment
        moment += timedelta(minutes=1)
    return None


@pytest.mark.parametrize("week", sorted(WEEKS))
@pytest.mark.parametrize("exceptions", [None, [{"date": "2026-11-28", "spans": ["12:00-13:00"]}],
                                        [{"date": "2026-11-23", "spans": []}]])
def test_next_turn_agrees_with_a_minute_walk(week: str, exceptions: list[dict[str, Any]] | None) -> None:
    shop = merchant(WEEKS[week], exceptions)
    start = datetime(2026, 11, 22, 23, 7, 31, tzinfo=SHANGHAI)
    for hour in range(0, 7 * 24, 5):
        at = start + timedelta(hours=hour, minutes=hour % 15)
        for until in (at + timedelta(days=1), at + timedelta(hours=3), at + timedelta(days=8)):
            assert shop.next_turn(at, until) == walked(shop, at, until), (week, exceptions, at, until)


def test_a_holiday_exception_moves_the_next_turn() -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    plain, holiday = merchant(WEEKS["day"]), merchant(WEEKS["day"], [{"date": str(date(2026, 11, 23)), "spans": []}])
    assert plain.next_turn(at, at + timedelta(days=1)) == datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    assert holiday.next_turn(at, at + timedelta(days=1)) is None  # closed all that day
    assert holiday.next_turn(at, at + timedelta(days=2)) == datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
