"""Crowd levels of areas and districts, with where the number came from and how sure it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

LEVELS = ("QUIET", "MODERATE", "BUSY", "PACKED")
SENSOR_KINDS = ("people_counter", "gate_counter", "camera", "manual")


def level_of(percent: float, thresholds: tuple[int, int, int]) -> str:
    moderate, busy, packed = thresholds
    if percent >= packed:
        return "PACKED"
    if percent >= busy:
        return "BUSY"
    if percent >= moderate:
        return "MODERATE"
    return "QUIET"


@dataclass(frozen=True, slots=True)
class SensorView:
    """One sensor's latest word about an area's occupancy."""

    sensor_id: str
    kind: str
    at: datetime
    occupancy: float


@dataclass(frozen=True, slots=True)
class Crowd:
    occupancy: int
    capacity: int
    percent: float
    level: str
    updated_at: datetime | None
    source: str | None  # sensor kind(s) behind the number, e.g. "people_counter" or "camera+manual"
    confidence: float
    stale: bool
    sensors: int


def no_data(capacity: int) -> Crowd:
    return Crowd(0, capacity, 0.0, "QUIET", None, None, 0.0, True, 0)


def area_crowd(views: list[SensorView], capacity: int, now: datetime, stale_minutes: int,
               thresholds: tuple[int, int, int]) -> Crowd:
    """Fresh sensors are averaged; if none is fresh, the newest stale one speaks, marked stale."""
    if not views:
        return no_data(capacity)
    stale_after = stale_minutes * 60
    fresh = [v for v in views if (now - v.at).total_seconds() <= stale_after]
    used = fresh or [max(views, key=lambda v: v.at)]
    occupancy = sum(v.occupancy for v in used) / len(used)
    newest = max(v.at for v in used)
    age = max(0.0, (now - newest).total_seconds())
    # More agreeing sensors and fresher numbers make a surer level; a stale one is a hint at best.
    freshness = max(0.0, 1 - age / stale_after) if fresh else 0.1
    coverage = min(1.0, 0.6 + 0.2 * (len(used) - 1))
    percent = round(100 * occupancy / capacity, 1) if capacity else 0.0
    return Crowd(
        occupancy=round(occupancy), capacity=capacity, percent=percent, level=level_of(percent, thresholds),
        updated_at=newest, source="+".join(sorted({v.kind for v in used})), confidence=round(freshness * coverage, 2),
        stale=not fresh, sensors=len(used),
    )


def district_crowd(areas: list[Crowd], now: datetime, thresholds: tuple[int, int, int]) -> Crowd:
    """Capacity-weighted: a packed small lane moves the district less than a packed plaza."""
    capacity = sum(a.capacity for a in areas)
    # fresh areas speak for the district; stale ones only when nothing fresher is known
    known = [a for a in areas if a.updated_at is not None and not a.stale] or \
        [a for a in areas if a.updated_at is not None]
    if not known or capacity == 0:
        return no_data(capacity)
    occupancy = sum(a.occupancy for a in known)
    known_capacity = sum(a.capacity for a in known)
    percent = round(100 * occupancy / known_capacity, 1)
    confidence = sum(a.confidence * a.capacity for a in known) / capacity  # unknown areas count as no confidence
    sources = sorted({s for a in known if a.source for s in a.source.split("+")})
    return Crowd(
        occupancy=occupancy, capacity=capacity, percent=percent, level=level_of(percent, thresholds),
        updated_at=max(a.updated_at for a in known if a.updated_at), source="+".join(sources) or None,
        confidence=round(confidence, 2), stale=all(a.stale for a in known), sensors=sum(a.sensors for a in known),
    )
