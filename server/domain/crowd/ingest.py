"""POST /ingest/crowd: validate a sensor's batch, store it in one write, move the live levels.

Readings get deterministic ids (sensor, area, timestamp), so a re-sent batch
finds its readings already there and changes nothing.  Each bad reading is
reported by index and field; the good ones in the same batch are stored.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.crowd import repository
from server.domain.crowd.sensors import Sensor
from server.domain.crowd.state import Stored, apply
from server.services.mongo import Doc

MAX_BATCH = 500
MAX_COUNT = 2_000_000
FUTURE_SLACK = timedelta(minutes=5)
MAX_AGE = timedelta(hours=48)  # older history goes in through the simulator's backfill, not the live API


@dataclass(slots=True)
class Rejected:
    index: int
    field: str
    message: str


@dataclass(slots=True)
class IngestReport:
    stored: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    touched_areas: set[str] = field(default_factory=set)


class BatchError(ValueError):
    """The batch as a whole is unusable (not a list, too large)."""


def _area_key(raw: Any) -> str | None:
    """A sensor may name its area by slug or by the API's global ID."""
    if not isinstance(raw, str) or not 0 < len(raw) <= 120:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if decoded.startswith("Area:"):
            return decoded[5:]
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    return raw


def _count(reading: dict[str, Any], name: str) -> tuple[int | None, str | None]:
    value = reading.get(name)
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int):
        return None, "must be a whole number"
    if not 0 <= value <= MAX_COUNT:
        return None, f"must be between 0 and {MAX_COUNT}"
    return value, None


async def ingest(db: AsyncDatabase[Doc], sensor: Sensor, payload: Any, now: datetime) -> IngestReport:
    readings = payload.get("readings") if isinstance(payload, dict) else payload
    if not isinstance(readings, list):
        raise BatchError('send {"readings": [...]} or a JSON list of readings')
    if len(readings) > MAX_BATCH:
        raise BatchError(f"at most {MAX_BATCH} readings per batch; split it")
    report = IngestReport()
    wanted = {_area_key(r.get("areaId")) for r in readings if isinstance(r, dict)} - {None}
    areas = await repository.places(db, sorted(a for a in wanted if a))
    docs: list[Doc] = []
    indices: list[int] = []
    parsed: list[Stored] = []
    for index, reading in enumerate(readings):
        problem = _check(reading, sensor, areas, now)
        if isinstance(problem, Rejected):
            problem.index = index
            report.rejected.append(problem)
            continue
        area_id, at, count, entries, exits = problem
        docs.append({"_id": f"{sensor.id}:{area_id}:{int(at.timestamp() * 1000)}", "sensor_id": sensor.id,
                     "kind": sensor.kind, "area_id": area_id, "district_id": sensor.district_id, "at": at,
                     "count": count, "entries": entries, "exits": exits})
        indices.append(index)
        parsed.append(Stored(sensor.id, sensor.kind, area_id, at, count, entries, exits))
    duplicate_positions = await repository.insert_readings(db, docs)
    fresh = [r for pos, r in enumerate(parsed) if pos not in duplicate_positions]
    report.stored = [indices[pos] for pos in range(len(parsed)) if pos not in duplicate_positions]
    report.duplicates = [indices[pos] for pos in sorted(duplicate_positions)]
    report.touched_areas = {r.area_id for r in fresh}
    await apply(db, fresh, {a: int(d["capacity"]) for a, d in areas.items()})
    return report


def _check(reading: Any, sensor: Sensor, areas: dict[str, Doc], now: datetime) \
        -> Rejected | tuple[str, datetime, int | None, int | None, int | None]:
    if not isinstance(reading, dict):
        return Rejected(0, "-", "each reading must be a JSON object")
    area_id = _area_key(reading.get("areaId"))
    if area_id is None:
        return Rejected(0, "areaId", "is required")
    area = areas.get(area_id)
    if area is None:
        return Rejected(0, "areaId", f"unknown area {area_id!r}")
    if area["district_id"] != sensor.district_id:
        return Rejected(0, "areaId", "belongs to another district than this sensor")
    raw_at = reading.get("at")
    try:
        at = datetime.fromisoformat(raw_at) if isinstance(raw_at, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        return Rejected(0, "at", "must be an ISO 8601 time with a UTC offset, e.g. 2026-11-29T20:15:00+08:00")
    at = at.astimezone(UTC).replace(microsecond=(at.microsecond // 1000) * 1000)
    if at > now + FUTURE_SLACK:
        return Rejected(0, "at", "is in the future")
    if at < now - MAX_AGE:
        return Rejected(0, "at", f"is older than {int(MAX_AGE.total_seconds() // 3600)} hours")
    count, problem = _count(reading, "count")
    if problem:
        return Rejected(0, "count", problem)
    entries, problem = _count(reading, "entries")
    if problem:
        return Rejected(0, "entries", problem)
    exits, problem = _count(reading, "exits")
    if problem:
        return Rejected(0, "exits", problem)
    if (count is None) == (entries is None and exits is None):
        return Rejected(0, "count", "give either count (occupancy) or entries/exits (flow)")
    return area_id, at, count, entries, exits
