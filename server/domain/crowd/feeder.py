"""Simulated sensors for the single-machine mode and demos: `python -m server crowd simulate`.

One simulated people counter per area feeds readings from the model in
simulate.py through the same ingestion as real sensors; one of them drops out
for a few hours a day, so the app shows a stale area too.  A backfill writes
weeks of hourly history directly, so forecasts have something to learn from.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain.actor import Actor
from server.domain.crowd import live, repository, sensors
from server.domain.crowd.ingest import ingest
from server.domain.crowd.outlook import calendar_for
from server.domain.crowd.simulate import simulated_readings
from server.domain.crowd.state import Stored, apply
from server.services.mongo import Doc
from server.settings import Settings

log = logging.getLogger("shangquan.simulator")
SIMULATOR = Actor(account_id="simulator", email="simulator", role="admin")
SEED = 2026
STEP = timedelta(minutes=15)


async def simulated_sensors(db: AsyncDatabase[Doc]) -> dict[str, sensors.Sensor]:
    """One simulated counter per area, registered once and found again by name."""
    found = {d["area_id"]: sensors.Sensor.from_doc(d)
             for d in await repository.active_sensors_named(db, "simulator")}
    for area_id in await repository.area_ids_except(db, sorted(found)):
        sensor, _ = await sensors.register(db, SIMULATOR, area_id, "people_counter", "simulator")
        found[area_id] = sensor
    return found


def _dropout_area(area_ids: list[str]) -> str | None:
    return sorted(area_ids)[len(area_ids) // 2] if area_ids else None


async def needs_history(db: AsyncDatabase[Doc]) -> bool:
    """No simulated history yet (or hardly any): single-machine mode writes it before it starts."""
    return not await repository.hourly_rows_at_least(db, 1000)


async def backfill(db: AsyncDatabase[Doc], days: int, now: datetime,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Hourly history for the past `days` (up to 48 h ago; the live feed covers the rest); `progress(done,
    total)` after each area, for a progress bar."""
    counters = await simulated_sensors(db)
    areas = await repository.places(db)
    calendars = {d: await calendar_for(db, d) for d in {a["district_id"] for a in areas.values()}}
    start, end = now - timedelta(days=days), now - timedelta(hours=48)
    total = 0
    for done, (area_id, area) in enumerate(sorted(areas.items()), start=1):
        sensor = counters[area_id]
        # weeks of model output are CPU work: off the event loop, which also serves requests
        produced = await asyncio.to_thread(list, simulated_readings(area_id, int(area["capacity"]), start, end, STEP,
                                                                    calendars[area["district_id"]], SEED))
        readings = [Stored(sensor.id, sensor.kind, area_id, at, count, None, None) for at, count in produced]
        await apply(db, readings, {area_id: int(area["capacity"])}, live=False)
        total += len(readings)
        if progress:
            progress(done, len(areas))
    return total


async def feed_once(db: AsyncDatabase[Doc], publisher: live.Publisher, settings: Settings, now: datetime) -> int:
    """One reading per area for this moment, through the live ingestion path."""
    counters = await simulated_sensors(db)
    areas = await repository.places(db)
    calendars = {d: await calendar_for(db, d) for d in {a["district_id"] for a in areas.values()}}
    dropout = _dropout_area(list(areas))
    touched: dict[str, set[str]] = defaultdict(set)
    sent = 0
    for area_id, area in areas.items():
        # the model is stateful within a day (weather, surges): replay today up to now
        # (the whole day as its span, so the dropout gap stays put; the generator is lazy, stop at now)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        today = simulated_readings(area_id, int(area["capacity"]), day_start, day_start + timedelta(days=1),
                                   timedelta(minutes=1), calendars[area["district_id"]], SEED,
                                   dropout=area_id == dropout)
        produced = [r for r in itertools.takewhile(lambda r: r[0] <= now, today) if now - r[0] < timedelta(minutes=1)]
        if not produced:
            continue  # the dropped-out counter is silent right now
        at, count = produced[-1]
        report = await ingest(db, counters[area_id], [{"areaId": area_id, "at": at.isoformat(), "count": count}], now)
        if report.touched_areas:
            touched[area["district_id"]].update(report.touched_areas)
            sent += 1
    for district_id, area_ids in touched.items():
        await live.broadcast(db, publisher, settings, {district_id}, area_ids, now)
    return sent


async def run(db: AsyncDatabase[Doc], redis: Redis, settings: Settings, interval: float, stop: asyncio.Event) -> None:
    publisher = live.Publisher(redis)
    while not stop.is_set():
        try:
            sent = await feed_once(db, publisher, settings, datetime.now(UTC))
            log.debug("simulated %d readings", sent)
        except Exception:  # a demo feed must not take the app down; say why and go on
            log.exception("crowd simulation round failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
