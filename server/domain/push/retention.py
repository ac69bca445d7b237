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

from server.domain.push import campaign_repository
from server.services.mongo import Doc

__all__ = ["CHUNK", "purge_deliveries"]

CHUNK: Final = 500  # campaigns per delete_many, so one purge never sends a huge $in


async def purge_deliveries(db: AsyncDatabase[Doc], retention_days: int, now: datetime) -> int:
    """Delete the delivery records of campaigns sent more than `retention_days` ago; returns how many."""
    cutoff = (now - timedelta(days=retention_days)).timestamp()
    old = await campaign_repository.unpurged_sent_before(db, cutoff)
    deleted = 0
    for start in range(0, len(old), CHUNK):
        deleted += await campaign_repository.purge_deliveries_of(db, old[start:start + CHUNK])
    return deleted
