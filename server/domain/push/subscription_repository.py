"""The MongoDB queries on push subscriptions (collection `push_subscriptions`): one document per endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.push.models import COLLECTION, PushSubscription
from server.services.mongo import Doc


async def created_at(db: AsyncDatabase[Doc], sub_id: str) -> datetime | None:
    before: dict[str, Any] | None = await db[COLLECTION].find_one({"_id": sub_id}, {"created_at": 1})
    return before["created_at"] if before else None


async def put(db: AsyncDatabase[Doc], sub: PushSubscription) -> None:
    """Raises DuplicateKeyError when two first subscribes of one endpoint race (the caller tries again)."""
    await db[COLLECTION].replace_one({"_id": sub.id}, sub.to_doc(), upsert=True)


async def find(db: AsyncDatabase[Doc], sub_id: str) -> PushSubscription | None:
    doc = await db[COLLECTION].find_one({"_id": sub_id})
    return PushSubscription.from_doc(doc) if doc is not None else None


async def replace(db: AsyncDatabase[Doc], sub: PushSubscription) -> None:
    # whole document: a top-level datetime $set onto an existing document is kept as text by nx-27017
    await db[COLLECTION].replace_one({"_id": sub.id}, {k: v for k, v in sub.to_doc().items() if k != "_id"})


async def delete(db: AsyncDatabase[Doc], sub_id: str) -> bool:
    result = await db[COLLECTION].delete_one({"_id": sub_id})
    return result.deleted_count == 1
