"""Current crowd of districts, and its broadcast to every web process through Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain.crowd import alerts, repository
from server.domain.crowd.models import Crowd
from server.domain.crowd.state import area_crowds, combine_district
from server.services.mongo import Doc
from server.settings import Settings

CHANNEL_PREFIX = "crowd:"
log = logging.getLogger("shangquan.crowd")


@dataclass(frozen=True, slots=True)
class DistrictUpdate:
    district_id: str
    district: Crowd
    areas: dict[str, Crowd]


async def district_updates(db: AsyncDatabase[Doc], district_ids: set[str], now: datetime, stale_minutes: int,
                           thresholds: tuple[int, int, int]) -> list[DistrictUpdate]:
    by_district: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for area in await repository.places_of_districts(db, sorted(district_ids)):
        by_district[area["district_id"]].append((area["_id"], int(area["capacity"])))
    every_area = [a for areas in by_district.values() for a in areas]
    crowds = await area_crowds(db, every_area, now, stale_minutes, thresholds)
    return [DistrictUpdate(d, combine_district([crowds[a] for a, _ in areas], now, thresholds),
                           {a: crowds[a] for a, _ in areas}) for d, areas in sorted(by_district.items())]


def _crowd_json(crowd: Crowd) -> dict[str, Any]:
    data = asdict(crowd)
    data["updated_at"] = crowd.updated_at.isoformat() if crowd.updated_at else None
    return data


def crowd_from_json(data: dict[str, Any]) -> Crowd:
    updated = data.get("updated_at")
    return Crowd(**{**data, "updated_at": datetime.fromisoformat(updated) if updated else None})


async def publish(redis: Redis, update: DistrictUpdate, sent_at: datetime) -> None:
    message = {"districtId": update.district_id, "district": _crowd_json(update.district),
               "areas": {a: _crowd_json(c) for a, c in update.areas.items()}, "sentAt": sent_at.isoformat()}
    await redis.publish(CHANNEL_PREFIX + update.district_id, json.dumps(message, separators=(",", ":")))


class Publisher:
    """At most one update per district every `interval` seconds from this process.

    Subscriber work grows with messages × subscribers, so a burst of readings becomes one
    message now and one trailing message with the newest level, never a queue of stale ones.
    """

    def __init__(self, redis: Redis, interval: float = 0.1) -> None:
        self.redis, self.interval = redis, interval
        self.last: dict[str, float] = {}
        self.newest: dict[str, tuple[DistrictUpdate, datetime]] = {}
        self.trailing: dict[str, asyncio.Task[None]] = {}

    async def send(self, update: DistrictUpdate, now: datetime) -> None:
        district = update.district_id
        clock = asyncio.get_running_loop().time()
        wait = self.last.get(district, -self.interval) + self.interval - clock
        if wait <= 0 and district not in self.trailing:
            self.last[district] = clock
            await publish(self.redis, update, now)
            return
        self.newest[district] = (update, now)
        if district not in self.trailing:
            self.trailing[district] = asyncio.create_task(self._later(district, max(wait, 0.0)))

    async def _later(self, district: str, wait: float) -> None:
        await asyncio.sleep(wait)
        update, now = self.newest.pop(district)
        self.last[district] = asyncio.get_running_loop().time()
        del self.trailing[district]
        try:
            await publish(self.redis, update, now)
        except Exception:  # the next reading publishes again; a lost trailing update is only late
            log.warning("crowd update for %s not published", district, exc_info=True)

    async def close(self) -> None:
        for task in list(self.trailing.values()):
            task.cancel()


async def broadcast(db: AsyncDatabase[Doc], publisher: Publisher, settings: Settings, district_ids: set[str],
                    touched_areas: set[str], now: datetime) -> None:
    """After new readings: tell every web process, and check the alert rules of the areas that moved."""
    for update in await district_updates(db, district_ids, now, settings.crowd_stale_minutes,
                                         settings.crowd_thresholds):
        await publisher.send(update, now)
        await alerts.evaluate(db, publisher.redis, {a: c for a, c in update.areas.items() if a in touched_areas}, now)
