"""Merchants whose postings a failed back-office write left unsettled (merchants/postings.py `apply`): the
lists it may have left wrong, so the merchant's next save, or the next start, sets them from the
merchant as stored.  One small document per such merchant, read by _id; normally none."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pymongo.asynchronous.database import AsyncDatabase

from server.services.mongo import Doc

# the lists as one string (list names hold no line break): nx-27017 copies each element of an array it
# writes, and the mark is compared whole when it is cleared
SEP = "\n"


async def lists_of(db: AsyncDatabase[Doc], key: str) -> list[str] | None:
    doc = await db.merchant_postings_pending.find_one({"_id": key})
    return doc["lists"].split(SEP) if doc is not None else None


async def mark(db: AsyncDatabase[Doc], key: str, lists: set[str]) -> None:
    """The merchant's postings may be wrong on these lists (with those of an earlier mark)."""
    earlier = await lists_of(db, key) or []
    text = SEP.join(sorted({*earlier, *lists}))
    await db.merchant_postings_pending.replace_one({"_id": key}, {"_id": key, "lists": text}, upsert=True)


async def clear(db: AsyncDatabase[Doc], key: str, lists: list[str]) -> None:
    """Settled: the mark goes, unless a failed write marked more lists since it was read."""
    await db.merchant_postings_pending.delete_one({"_id": key, "lists": SEP.join(lists)})


async def keys(db: AsyncDatabase[Doc]) -> AsyncIterator[str]:
    async for doc in db.merchant_postings_pending.find({}, {"_id": 1}):
        yield str(doc["_id"])
