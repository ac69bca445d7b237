"""The live picture: each area's latest reading per sensor, hourly means for history and forecasts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.crowd import repository
from server.domain.crowd.models import Crowd, SensorView, area_crowd, district_crowd
from server.services.mongo import Doc


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Stored:
    """A reading that was new (not a re-send), as the state needs it."""

    sensor_id: str
    kind: str
    area_id: str
    at: datetime
    count: int | None
    entries: int | None
    exits: int | None


async def apply(db: AsyncDatabase[Doc], readings: list[Stored], capacities: dict[str, int], *,
                live: bool = True) -> None:
    """Fold new readings into crowd_state (latest per sensor) and crowd_hourly (sums per hour), one write each.

    A backfill of history passes live=False: old readings must not pose as the current level."""
    if not readings:
        return
    area_ids = sorted({r.area_id for r in readings})
    states = await repository.states_of(db, area_ids)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for reading in sorted(readings, key=lambda r: r.at):
        key = (reading.area_id, reading.sensor_id)
        current = latest.get(key) or (states.get(reading.area_id, {}).get("sensors") or {}).get(reading.sensor_id)
        if current is not None and current["at"] >= reading.at:
            continue  # late arrival: kept in the readings, too old to move the live number
        if reading.count is not None:
            occupancy = float(reading.count)
        else:
            # gate counters report flows: occupancy is the running balance, never below zero
            before = float(current["occupancy"]) if current else 0.0
            occupancy = max(0.0, before + (reading.entries or 0) - (reading.exits or 0))
        latest[key] = {"at": reading.at, "occupancy": occupancy, "kind": reading.kind}
    hourly: dict[tuple[str, int], list[float]] = defaultdict(list)
    for reading in readings:
        observed: float | None = float(reading.count) if reading.count is not None else None
        if observed is None:
            view = latest.get((reading.area_id, reading.sensor_id))
            observed = float(view["occupancy"]) if view else None
        capacity = capacities.get(reading.area_id)
        if observed is not None and capacity:
            hourly[(reading.area_id, int(hour_of(reading.at).timestamp()))].append(100 * observed / capacity)
    if live:
        await repository.set_sensor_views(db, latest)
    # a live batch is one write; a backfill's thousands of hours go in slices
    await repository.add_hourly(db, hourly)


def _views(state: Doc | None) -> list[SensorView]:
    sensors = (state or {}).get("sensors") or {}
    return [SensorView(sid, str(v["kind"]), v["at"], float(v["occupancy"])) for sid, v in sensors.items()]


async def area_crowds(db: AsyncDatabase[Doc], areas: list[tuple[str, int]], now: datetime, stale_minutes: int,
                      thresholds: tuple[int, int, int]) -> dict[str, Crowd]:
    """Crowd of each (area id, capacity), in one read."""
    ids = [a for a, _ in areas]
    states = await repository.states_of(db, ids)
    return {a: area_crowd(_views(states.get(a)), cap, now, stale_minutes, thresholds) for a, cap in areas}


def combine_district(crowds: list[Crowd], now: datetime, thresholds: tuple[int, int, int]) -> Crowd:
    return district_crowd(crowds, now, thresholds)


async def hourly_history(db: AsyncDatabase[Doc], area_id: str, start: datetime, end: datetime) -> dict[datetime, float]:
    """Mean percent per UTC hour start in [start, end)."""
    rows = await repository.hourly_rows(db, area_id, int(hour_of(start).timestamp()), int(end.timestamp()))
    return {datetime.fromtimestamp(d["hour_ts"], UTC): d["sum"] / d["n"] for d in rows if d.get("n")}

