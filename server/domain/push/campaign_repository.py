"""The MongoDB queries on push campaigns (collection `push_campaigns`) and the counts a campaign needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.push.campaign import (
    COLLECTION,
    SENDING,
    STAGE_EXPANDED,
    STAGE_EXPANDING,
    STAGE_NEW,
    Campaign,
    audience_filter,
)
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.domain.push.models import DELIVERIES
from server.services.mongo import Doc, earliest_after


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


async def next_send(db: AsyncDatabase[Doc], after_ts: float) -> float | None:
    """The first scheduled send time after `after_ts` (epoch seconds): the campaign enters the inbox then."""
    found = await earliest_after(db, COLLECTION, "send_at_ts", after_ts, {"status": SENDING})
    return None if found is None else float(found)


def _due(now: float, stale_after: float) -> dict[str, Any]:
    """Sending, its time come, and nobody expanding it (never started, or its expander died)."""
    return {"status": SENDING, "send_at_ts": {"$lte": now},
            "$or": [{"stage": STAGE_NEW}, {"stage": STAGE_EXPANDING, "expanding_ts": {"$lt": now - stale_after}}]}


async def due_for_expansion(db: AsyncDatabase[Doc], now: float, stale_after: float) -> list[str]:
    return [str(d["_id"]) async for d in db[COLLECTION].find(_due(now, stale_after), {"_id": 1})]


async def claim_expansion(db: AsyncDatabase[Doc], campaign_id: str, now: float, stale_after: float,
                          consumer: str) -> bool:
    """Moves the stage to "expanding" for `consumer`; of two expanders, one gets True."""
    claim = await db[COLLECTION].update_one(
        {"_id": campaign_id, **_due(now, stale_after)},
        {"$set": {"stage": STAGE_EXPANDING, "expanding_ts": now, "expander": consumer}})
    return claim.modified_count == 1


async def touch_expanding(db: AsyncDatabase[Doc], campaign_id: str, ts: float) -> None:
    await db[COLLECTION].update_one({"_id": campaign_id}, {"$set": {"expanding_ts": ts}})


async def mark_expanded(db: AsyncDatabase[Doc], campaign_id: str, targeted: int) -> None:
    await db[COLLECTION].update_one({"_id": campaign_id},
                                    {"$set": {"stage": STAGE_EXPANDED, "stats.targeted": targeted}})


async def audience_page(db: AsyncDatabase[Doc], audience: dict[str, Any], after: str, limit: int) -> list[str]:
    """Subscription ids of the audience after `after` (keyset, by _id), at most `limit`.

    The page starts at `after` on the _id index (`min` with its `hint`, as MongoDB requires), not with
    `_id: {$gt: after}` in the filter: nx-27017 evaluates a range on _id in Python over the collection from its
    start, so each page cost a scan of every subscription before it (the expansion of 200,000 was quadratic and
    stalled the embedded server for seconds at a time).  `min` is inclusive: `after` itself is left out."""
    if not after:
        cursor = db[SUBSCRIPTIONS].find(audience, {"_id": 1})
        return [str(doc["_id"]) async for doc in cursor.sort("_id", 1).limit(limit)]
    cursor = db[SUBSCRIPTIONS].find(audience, {"_id": 1}, min={"_id": after}, hint=[("_id", 1)])
    ids = [str(doc["_id"]) async for doc in cursor.sort("_id", 1).limit(limit + 1)]
    return [i for i in ids if i != after][:limit]


async def expanded_since(db: AsyncDatabase[Doc], since_ts: float) -> list[Doc]:
    """Expanded campaigns sent after `since_ts`, as documents (reconciling reads their expanding_ts too)."""
    return [d async for d in db[COLLECTION].find({"stage": STAGE_EXPANDED, "send_at_ts": {"$gt": since_ts}})]


async def expand_again(db: AsyncDatabase[Doc], campaign_id: str) -> None:
    await db[COLLECTION].update_one({"_id": campaign_id, "stage": STAGE_EXPANDED}, {"$set": {"stage": STAGE_NEW}})


async def set_fields(db: AsyncDatabase[Doc], campaign_id: str, fields: dict[str, Any]) -> None:
    await db[COLLECTION].update_one({"_id": campaign_id}, {"$set": fields})


async def unpurged_sent_before(db: AsyncDatabase[Doc], cutoff_ts: float) -> list[str]:
    """Campaigns sent before `cutoff_ts` whose delivery records are still kept."""
    return [str(d["_id"]) async for d in db[COLLECTION].find(
        {"send_at_ts": {"$lt": cutoff_ts}, "deliveries_purged": {"$ne": True}}, {"_id": 1})]


async def purge_deliveries_of(db: AsyncDatabase[Doc], campaign_ids: list[str]) -> int:
    """Delete these campaigns' delivery records and mark them purged (so no later purge reads them again)."""
    result = await db[DELIVERIES].delete_many({"campaign_id": {"$in": campaign_ids}})
    await db[COLLECTION].update_many({"_id": {"$in": campaign_ids}}, {"$set": {"deliveries_purged": True}})
    return result.deleted_count
