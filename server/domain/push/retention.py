"""Delivery records are needed while a campaign sends (the exactly-once claim) and for a while after, to
answer "did this phone get it?"; after PUSH_DELIVERY_RETENTION_DAYS only the campaign's counters remain.

Records carry no date of their own (their times are epoch numbers the worker compares), so they are
purged by their campaign's send time; this works the same on MongoDB and on the embedded server,
which has no TTL indexes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.push.campaign import COLLECTION as CAMPAIGNS
from server.domain.push.models import DELIVERIES
from server.services.mongo import Doc

CHUNK: Final = 500  # campaigns per delete_many, so one purge never sends a huge $in


async def purge_deliveries(db: AsyncDatabase[Doc], retention_days: int, now: datetime) -> int:
    """Delete the delivery records of campaigns sent more than `retention_days` ago; returns how many."""
    cutoff = (now - timedelta(days=retention_days)).timestamp()
    old = [str(d["_id"]) async for d in db[CAMPAIGNS].find(
        {"send_at_ts": {"$lt": cutoff}, "deliveries_purged": {"$ne": True}}, {"_id": 1})]
    deleted = 0
    for start in range(0, len(old), CHUNK):
        chunk = old[start:start + CHUNK]
        result = await db[DELIVERIES].delete_many({"campaign_id": {"$in": chunk}})
        deleted += result.deleted_count
        # so the next purge does not read these campaigns again, forever
        await db[CAMPAIGNS].update_many({"_id": {"$in": chunk}}, {"$set": {"deliveries_purged": True}})
    return deleted
