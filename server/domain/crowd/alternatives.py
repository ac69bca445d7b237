"""Calmer places nearby: areas within walking distance, calmer now, with shops of the same kinds.

"Nearby" is what a shopper would walk: an area of the same district or of a neighbouring one (a district
with an area this close is a neighbour), ranked by how calm it is now against how far it is to walk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from server.domain.crowd.models import LEVELS
from server.domain.geo import Point, haversine_m

DETOUR = 1.3  # streets are not straight lines: walking distance over the crow's
WALK_M_PER_MIN = 75.0  # an unhurried 4.5 km/h
MAX_WALK_M = 3000.0  # about 40 minutes: beyond this it is a trip, not an alternative
CALMER_BY = 10.0  # percentage points calmer at least, besides a lower level
MINUTE_COST = 1.0  # percentage points of crowd one minute of walking is worth
CATEGORY_BONUS = 4.0  # points per shared category (up to three): the same errand is more likely done there


@dataclass(frozen=True, slots=True)
class Place:
    area_id: str
    district_id: str
    center: Point
    percent: float
    level: str
    known: bool  # a fresh reading stands behind percent
    categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class Alternative:
    place: Place
    walking_m: int
    minutes: int
    shared: tuple[str, ...]  # category slugs both places have, most common first
    score: float


def walking_m(a: Point, b: Point) -> float:
    return haversine_m(a, b) * DETOUR


def calmer_alternatives(origin: Place, candidates: Iterable[Place], first: int,
                        weights: dict[str, int] | None = None) -> list[Alternative]:
    """The best `first` calmer places, best first. `weights` ranks the origin's categories (merchant counts)."""
    rank = weights or {}
    found: list[Alternative] = []
    for c in candidates:
        if c.area_id == origin.area_id or not c.known:
            continue
        if LEVELS.index(c.level) >= LEVELS.index(origin.level) or c.percent > origin.percent - CALMER_BY:
            continue
        meters = walking_m(origin.center, c.center)
        if meters > MAX_WALK_M:
            continue
        shared = tuple(sorted(origin.categories & c.categories, key=lambda s: (-rank.get(s, 0), s)))
        if origin.categories and not shared:
            continue
        minutes = max(1, round(meters / WALK_M_PER_MIN))
        score = c.percent + MINUTE_COST * minutes - CATEGORY_BONUS * min(3, len(shared))
        found.append(Alternative(c, round(meters), minutes, shared, score))
    found.sort(key=lambda a: (a.score, a.walking_m, a.place.area_id))
    return found[:first]
