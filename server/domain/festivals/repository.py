from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.domain import versioned
from server.domain.festivals.models import Festival
from server.services.mongo import Doc, earliest_after


class When(Enum):
    CURRENT = "current"
    UPCOMING = "upcoming"
    PAST = "past"


def _when_filter(when: When | None, at: datetime) -> tuple[dict[str, Any], int]:
    if when is When.CURRENT:
        return {"starts_at": {"$lte": at}, "ends_at": {"$gt": at}}, 1
    if when is When.UPCOMING:
        return {"starts_at": {"$gt": at}}, 1
    if when is When.PAST:
        return {"ends_at": {"$lte": at}}, -1  # most recent first
    return {}, 1


async def next_boundary(db: AsyncDatabase[Doc], after: datetime) -> datetime | None:
    """The first instant after `after` at which some festival starts or ends."""
    found = [await earliest_after(db, "festivals", name, after) for name in ("starts_at", "ends_at")]
    return min((f for f in found if f is not None), default=None)


async def list_festivals(
    db: AsyncDatabase[Doc], when: When | None, at: datetime, district_id: str | None = None,
) -> list[Festival]:
    query, direction = _when_filter(when, at)
    if district_id:
        query = {**query, "district_ids": {"$in": [district_id]}}
    cursor = db.festivals.find(query).sort([("starts_at", direction), ("_id", 1)])
    return [Festival.from_doc(d) async for d in cursor]


async def by_ids(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, Festival]:
    return {d["_id"]: Festival.from_doc(d) async for d in db.festivals.find({"_id": {"$in": ids}})}


class SlugTaken(Exception):
    """A festival with this slug (its _id) exists already."""


async def festival_doc(db: AsyncDatabase[Doc], festival_id: str) -> Doc | None:
    return await db.festivals.find_one({"_id": festival_id})


async def districts_of_festival(db: AsyncDatabase[Doc], festival_id: str) -> list[str] | None:
    doc = await db.festivals.find_one({"_id": festival_id}, {"district_ids": 1})
    return list(doc["district_ids"]) if doc else None


async def insert_festival(db: AsyncDatabase[Doc], doc: Doc) -> None:
    try:
        await db.festivals.insert_one(doc)
    except DuplicateKeyError:
        raise SlugTaken(doc["_id"]) from None


async def save_festival(db: AsyncDatabase[Doc], before: Doc, version: int, changes: Doc) -> Doc:
    return await versioned.save(db.festivals, before, version, changes)
