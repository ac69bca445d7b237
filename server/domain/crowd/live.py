"""Current crowd of districts, and its broadcast to every web process through Redis pub/sub."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain.crowd.models import Crowd
from server.domain.crowd.state import area_crowds, combine_district
from server.services.mongo import Doc
from server.settings import Settings

CHANNEL_PREFIX = "crowd:"


@dataclass(frozen=True, slots=True)
class DistrictUpdate:
    district_id: str
    district: Crowd
    areas: dict[str, Crowd]


async def district_updates(db: AsyncDatabase[Doc], district_ids: set[str], now: datetime, stale_minutes: int,
                           thresholds: tuple[int, int, int]) -> list[DistrictUpdate]:
    by_district: dict[str, list[tuple[str, int]]] = defaultdict(list)
    cursor = db.areas.find({"district_id": {"$in": sorted(district_ids)}}, {"district_id": 1, "capacity": 1})
    async for area in cursor:
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


async def broadcast(db: AsyncDatabase[Doc], redis: Redis, settings: Settings, district_ids: set[str],
                    touched_areas: set[str], now: datetime) -> None:
    """After new readings: tell every web process, and check the alert rules of the areas that moved."""
    from server.domain.crowd import alerts

    for update in await district_updates(db, district_ids, now, settings.crowd_stale_minutes,
                                         settings.crowd_thresholds):
        await publish(redis, update, now)
        await alerts.evaluate(db, redis, {a: c for a, c in update.areas.items() if a in touched_areas}, now)
