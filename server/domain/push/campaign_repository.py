"""The MongoDB queries on push campaigns (collection `push_campaigns`) and the counts a campaign needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.push.campaign import COLLECTION, Campaign, audience_filter
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.services.mongo import Doc


async def count(db: AsyncDatabase[Doc], collection: str, query: dict[str, Any]) -> int:
    rows = await (await db[collection].aggregate([{"$match": query}, {"$count": "n"}])).to_list()
    return int(rows[0]["n"]) if rows else 0


async def known_districts(db: AsyncDatabase[Doc], district_ids: Sequence[str]) -> int:
    if not district_ids:
        return 0
    return await count(db, "districts", {"_id": {"$in": list(district_ids)}})


async def festival_end(db: AsyncDatabase[Doc], festival_id: str | None) -> float | None:
    if not festival_id:
        return None
    festival = await db.festivals.find_one({"_id": festival_id}, {"ends_at": 1})
    ends_at = festival.get("ends_at") if festival else None
    if not isinstance(ends_at, datetime):
        return None
    return (ends_at if ends_at.tzinfo else ends_at.replace(tzinfo=UTC)).timestamp()


async def audience_count(db: AsyncDatabase[Doc], district_ids: Sequence[str], topics: Sequence[str],
                         locales: Sequence[str]) -> int:
    return await count(db, SUBSCRIPTIONS, audience_filter(district_ids, topics, locales))


async def insert(db: AsyncDatabase[Doc], doc: dict[str, Any]) -> None:
    await db[COLLECTION].insert_one(doc)


async def get(db: AsyncDatabase[Doc], campaign_id: str) -> Campaign | None:
    doc = await db[COLLECTION].find_one({"_id": campaign_id})
    return Campaign.from_doc(doc) if doc else None


async def release(db: AsyncDatabase[Doc], campaign_id: str, *, approved_by: str | None, send_ts: float,
                  ttl: int) -> bool:
    """Awaiting approval → sending; False if someone else released (or cancelled) it first."""
    result = await db[COLLECTION].update_one(
        {"_id": campaign_id, "status": "awaiting_approval"},
        {"$set": {"status": "sending", "approved_by": approved_by, "send_at_ts": send_ts, "ttl": ttl}})
    return result.modified_count == 1


async def set_status(db: AsyncDatabase[Doc], campaign_id: str, status: str) -> None:
    await db[COLLECTION].update_one({"_id": campaign_id}, {"$set": {"status": status}})


async def newest(db: AsyncDatabase[Doc], district_ids: Sequence[str] | None, limit: int) -> list[Campaign]:
    """The newest campaigns touching `district_ids` (all campaigns when None)."""
    query: dict[str, Any] = {} if district_ids is None else {"district_ids": {"$in": sorted(district_ids)}}
    cursor = db[COLLECTION].find(query).sort([("created_ts", -1), ("_id", -1)]).limit(limit)
    return [Campaign.from_doc(doc) async for doc in cursor]


async def count_click(db: AsyncDatabase[Doc], campaign_id: str) -> bool:
    result = await db[COLLECTION].update_one({"_id": campaign_id}, {"$inc": {"stats.clicked": 1}})
    return result.matched_count == 1
