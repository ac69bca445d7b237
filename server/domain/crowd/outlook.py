"""An area's 12-hour outlook: its hourly history, the festival calendar of its district, the live level."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.crowd.calendar import MAINLAND_HOLIDAYS_2026_2027, MAINLAND_WORKDAYS_2026_2027, Calendar
from server.domain.crowd.forecast import HISTORY_WEEKS, HourPoint, forecast
from server.domain.crowd.models import Crowd
from server.domain.crowd.state import hourly_history
from server.services.mongo import Doc


async def calendar_for(db: AsyncDatabase[Doc], district_id: str) -> Calendar:
    days: set[date] = set()
    async for festival in db.festivals.find({"district_ids": {"$in": [district_id]}}, {"starts_on": 1, "ends_on": 1}):
        day, last = date.fromisoformat(festival["starts_on"]), date.fromisoformat(festival["ends_on"])
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
