"""The inbox's one query: campaigns for some districts, topics and a locale, newest first, a page at a time."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from server.domain.paging import Key
from server.domain.push.campaign import COLLECTION, SENDING
from server.services.mongo import Doc


def _before(after: Key | None) -> dict[str, Any]:
    """Strictly after `after` in (send_at_ts, _id) descending order."""
    if after is None:
        return {}
    value, last_id = after
    return {"$or": [{"send_at_ts": {"$lt": value}}, {"send_at_ts": value, "_id": {"$lt": last_id}}]}


async def sending_campaigns(db: AsyncDatabase[Doc], districts: list[str], topics: list[str], reader: str,
                            sent_by_ts: float, limit: int, after: Key | None) -> list[Doc]:
    """Campaigns being sent or sent by `sent_by_ts` (not scheduled ones before their time, not those awaiting
    approval) to any of these districts and topics, in the reader's locale."""
    query: dict[str, Any] = {"district_ids": {"$in": districts}, "topics": {"$in": topics}, "status": SENDING,
                             "locales": {"$in": [reader]}, "send_at_ts": {"$lte": sent_by_ts}}
    boundary = _before(after)
    if boundary:
        query = {"$and": [query, boundary]}
    cursor = db[COLLECTION].find(query).sort([("send_at_ts", DESCENDING), ("_id", DESCENDING)]).limit(limit)
    return [doc async for doc in cursor]
