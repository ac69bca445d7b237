"""An area's day so far against what was expected (the dashboard's crowd chart): measured hours from the hourly
history, the live value on the hour now running, nothing yet ahead; expected from the usual day, then the forecast."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server.domain.crowd.models import Crowd
from server.domain.crowd.outlook import coming_week, day_curve, local_today, popular_times
from server.domain.merchants.hours import SHANGHAI


async def test_measured_live_and_expected_hours_of_today(db_client: Any) -> None:
    db = db_client[f"curve_{uuid.uuid4().hex[:8]}"]
    local_now = datetime.now(SHANGHAI).replace(hour=15, minute=30, second=0, microsecond=0)
    now = local_now.astimezone(UTC)
    ten, two = (local_now.replace(hour=h, minute=0).astimezone(UTC) for h in (10, 14))
    await db.crowd_hourly.insert_many([
        {"area_id": "a1", "hour_ts": int(ten.timestamp()), "sum": 60.0, "n": 2},  # 30 %
        {"area_id": "a1", "hour_ts": int(two.timestamp()), "sum": 55.0, "n": 1},
        {"area_id": "a1", "hour_ts": int((ten - timedelta(days=7)).timestamp()), "sum": 20.0, "n": 1},
    ])
    live = Crowd(420, 1000, 42.0, "MODERATE", now - timedelta(minutes=2), "camera", 0.9, False, 1)
    curve = await day_curve(db, "a1", "d1", now, live)

    assert [h.astimezone(SHANGHAI).hour for h in curve.hours] == list(range(24))
    assert curve.measured[10] == 30.0 and curve.measured[14] == 55.0 and curve.measured[11] is None
    assert curve.measured[15] == 42.0  # the hour now running: the live value
    assert all(v is None for v in curve.measured[16:])
    assert len(curve.expected) == 24 and all(v >= 0 for v in curve.expected)

    stale = Crowd(420, 1000, 42.0, "MODERATE", now - timedelta(hours=2), "camera", 0.1, True, 1)
    assert (await day_curve(db, "a1", "d1", now, stale)).measured[15] is None  # a stale number is no measurement
    await db_client.drop_database(db.name)


async def test_the_coming_week_matches_popular_times_day_by_day(db_client: Any) -> None:
    db = db_client[f"week_{uuid.uuid4().hex[:8]}"]
    now = datetime.now(UTC).replace(minute=20, second=0, microsecond=0)
    start = now - timedelta(weeks=3)
    await db.crowd_hourly.insert_many([
        {"area_id": "a1", "hour_ts": int((start + timedelta(hours=h)).timestamp()), "sum": float(10 + h % 24), "n": 1}
        for h in range(3 * 7 * 24)])
    live = Crowd(300, 1000, 30.0, "QUIET", now - timedelta(minutes=1), "camera", 0.9, False, 1)
    week = await coming_week(db, "a1", "d1", now, live)
    assert [d.day for d in week] == [local_today(now) + timedelta(days=n) for n in range(7)]
    for day in (week[0], week[3]):
        single = await popular_times(db, [("a1", 1000, live)], "d1", live, day.day, now)
        assert [h.typical for h in day.hours] == [h.typical for h in single.hours]
        assert day.best == single.best
    await db_client.drop_database(db.name)
