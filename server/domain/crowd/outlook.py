"""An area's outlook: its hourly history, the festival calendar of its district, the live level: the next
12 hours, and popular times of a day in the coming week."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.crowd import repository
from server.domain.crowd.calendar import (
    MAINLAND_HOLIDAYS_2026_2027,
    MAINLAND_WORKDAYS_2026_2027,
    Calendar,
    local_time,
)
from server.domain.crowd.forecast import HISTORY_WEEKS, HourPoint, forecast, typical_and_forecast
from server.domain.crowd.models import Crowd
from server.domain.crowd.popular import (
    HORIZON,
    NextHours,
    PopularHour,
    best_hours,
    day_hours,
    next_hours,
    popular_hours,
    usual_day,
)
from server.domain.crowd.state import hourly_history
from server.services.mongo import Doc


async def calendar_for(db: AsyncDatabase[Doc], district_id: str) -> Calendar:
    days: set[date] = set()
    for starts_on, ends_on in await repository.festival_spans(db, district_id):
        day, last = date.fromisoformat(starts_on), date.fromisoformat(ends_on)
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return Calendar(festival_days=frozenset(days), holidays=MAINLAND_HOLIDAYS_2026_2027,
                    workdays=MAINLAND_WORKDAYS_2026_2027)


async def area_outlook(db: AsyncDatabase[Doc], area_id: str, district_id: str, now: datetime, live: Crowd,
                       hours: int = 12) -> list[HourPoint]:
    history = await hourly_history(db, area_id, now - timedelta(weeks=HISTORY_WEEKS), now)
    live_percent = None if live.stale or live.updated_at is None else live.percent
    return forecast(history, now, live_percent, await calendar_for(db, district_id), hours)


DAYS_AHEAD = 6  # popular times cover today and the six days after it


@dataclass(frozen=True, slots=True)
class DayOutlook:
    day: date
    day_kind: str  # calendar.Calendar.day_kind of the date
    hours: list[PopularHour]
    best: tuple[int, int] | None
    shape: NextHours  # today: the coming hours; a later day: its usual busiest hour
    upcoming: bool


def local_today(now: datetime) -> date:
    return local_time(now).date()


def in_range(day: date, now: datetime) -> bool:
    today = local_today(now)
    return today <= day <= today + timedelta(days=DAYS_AHEAD)


@dataclass(frozen=True, slots=True)
class _Series:
    weight: float
    typical: list[float]  # 24 local hours of the day, then the hour now running
    ahead: list[HourPoint]


async def _series(db: AsyncDatabase[Doc], area_id: str, weight: float, calendar: Calendar, day: date, now: datetime,
                  live_percent: float | None) -> _Series:
    history = await hourly_history(db, area_id, now - timedelta(weeks=HISTORY_WEEKS), now)
    usual, ahead = typical_and_forecast(history, now, live_percent, calendar, [*day_hours(day), now],
                                        HORIZON if day == local_today(now) else 0)
    return _Series(weight, usual, ahead)


async def popular_times(db: AsyncDatabase[Doc], areas: list[tuple[str, int, Crowd]], district_id: str, live: Crowd,
                        day: date, now: datetime) -> DayOutlook:
    """Popular times of one area, or of a district as its areas weighted by capacity: (area id, capacity, crowd)."""
    calendar = await calendar_for(db, district_id)
    # the areas' histories are read concurrently: the reads, not the arithmetic, take the time
    series = await asyncio.gather(*(_series(db, area_id, float(max(1, capacity)), calendar, day, now, _live(crowd))
                                    for area_id, capacity, crowd in areas))
    total = sum(s.weight for s in series) or 1.0
    usual = [sum(s.weight * s.typical[i] for s in series) / total for i in range(25)]
    live_percent = _live(live)
    today = day == local_today(now)
    hours = popular_hours(day, usual[:24], now, live_percent if today else None)
    if today:
        ahead = [HourPoint(p.hour, sum(s.weight * s.ahead[k].percent for s in series) / total, p.confidence)
                 for k, p in enumerate(series[0].ahead)] if series else []
        now_percent = live_percent if live_percent is not None else usual[24]
        shape = next_hours(now, now_percent, ahead, usual[24] if live_percent is not None else None)
    else:
        shape = usual_day(hours)
    return DayOutlook(day, calendar.day_kind(day), hours, best_hours(hours, now), shape, not today)


def _live(crowd: Crowd) -> float | None:
    return None if crowd.stale or crowd.updated_at is None else crowd.percent


@dataclass(frozen=True, slots=True)
class DayCurve:
    """An area's local day so far against what was expected of it, hour by hour (24 local hours)."""

    hours: list[datetime]  # UTC starts of the local day's hours
    measured: list[float | None]  # the hourly mean measured, the live value on the hour now running, else None
    expected: list[float]  # the usual level on past hours, the live-blended forecast on the hours to come


async def day_curve(db: AsyncDatabase[Doc], area_id: str, district_id: str, now: datetime, live: Crowd) -> DayCurve:
    today = local_today(now)
    hours = day_hours(today)
    history = await hourly_history(db, area_id, now - timedelta(weeks=HISTORY_WEEKS), now)
    live_percent = _live(live)
    usual, ahead = typical_and_forecast(history, now, live_percent, await calendar_for(db, district_id), hours,
                                        HORIZON)
    coming = {p.hour: p.percent for p in ahead}
    current = now.replace(minute=0, second=0, microsecond=0)
    measured: list[float | None] = []
    for start in hours:
        if start == current:
            measured.append(live_percent)
        else:
            measured.append(history.get(start) if start < current else None)
    expected = [coming.get(start, usual[i]) if start > current else usual[i] for i, start in enumerate(hours)]
    return DayCurve(hours, measured, expected)


async def coming_week(db: AsyncDatabase[Doc], area_id: str, district_id: str, now: datetime,
                      live: Crowd) -> list[DayOutlook]:
    """Popular times of one area for today and the DAYS_AHEAD days after (when to staff), from one read of its
    history and one fitted model; each day's shape is its usual busiest hour, today's included."""
    calendar = await calendar_for(db, district_id)
    history = await hourly_history(db, area_id, now - timedelta(weeks=HISTORY_WEEKS), now)
    today = local_today(now)
    days = [today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)]
    usual, _ = typical_and_forecast(history, now, _live(live), calendar, [h for d in days for h in day_hours(d)], 0)
    out = []
    for k, day in enumerate(days):
        hours = popular_hours(day, usual[24 * k:24 * (k + 1)], now, _live(live) if day == today else None)
        out.append(DayOutlook(day, calendar.day_kind(day), hours, best_hours(hours, now), usual_day(hours),
                              day != today))
    return out
