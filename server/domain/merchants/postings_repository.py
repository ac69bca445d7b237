"""Sorted lists of merchant keys ("postings"), stored as blocks: one document holds up to BLOCK keys of one
list in one string.

Why blocks of one string: nx-27017 serves an index range only on scalar fields, and neosqlite copies every
array element of a document it writes, so a row per (list, merchant) or an array of keys would make the
content load far heavier than the lookups it saves.  A block is found by `(list, last)`: the first block
whose last key is after the cursor holds the next keys of the list, so reading a page of a list is one
index range of one or two documents whatever the list's length.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase

from server.services.mongo import Doc

BLOCK = 512
SEP = "\n"
BULK_SLICE = 2000
# a block that grows past this by back-office writes is split in two
SPLIT_AT = 2 * BLOCK


def _block(name: str, keys: list[str], *, head: bool, more: bool) -> Doc:
    # a list's first block is addressed by the list's name, so the heads of several lists are one read
    return {"_id": name if head else f"{name}|{keys[0]}", "list": name, "last": keys[-1] if keys else "",
            "n": len(keys), "keys": SEP.join(keys), "more": more}


def block_docs(lists: dict[str, list[str]]) -> Iterable[Doc]:
    """Each list cut into blocks of BLOCK keys in order (the lists are sorted in place)."""
    for name, keys in lists.items():
        keys.sort()
        for start in range(0, len(keys), BLOCK):
            yield _block(name, keys[start:start + BLOCK], head=start == 0, more=start + BLOCK < len(keys))


def keys_of(block: Doc) -> list[str]:
    return block["keys"].split(SEP) if block["keys"] else []


async def replace_all(db: AsyncDatabase[Doc], lists: dict[str, list[str]], prefix: str) -> None:
    """Every list whose name starts with `prefix` becomes the given ones (the content loader's rebuild)."""
    await db.merchant_postings.delete_many({"list": {"$gte": prefix, "$lt": prefix + "\uffff"}})
    batch: list[Doc] = []
    for doc in block_docs(lists):
        batch.append(doc)
        if len(batch) >= BULK_SLICE:
            await db.merchant_postings.insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db.merchant_postings.insert_many(batch, ordered=False)


async def heads(db: AsyncDatabase[Doc], names: list[str]) -> dict[str, Doc]:
    """The first block of each list that has one (a list without a head is empty), in one read by _id."""
    return {d["_id"]: d async for d in db.merchant_postings.find({"_id": {"$in": names}})}


async def walk(db: AsyncDatabase[Doc], name: str, after: str | None, head: Doc | None = None,
               head_read: bool = False) -> AsyncIterator[str]:
    """The list's keys after `after`, in order, read a block at a time; from `head` on when the list's
    head was read already (`head_read`; None then means the list is empty)."""
    last = after or ""
    if head_read:
        if head is None:
            return
        for key in keys_of(head):
            if key > last:
                yield key
        if not head["more"]:
            return
        last = max(last, head["last"])
    while True:
        cursor = db.merchant_postings.find({"list": name, "last": {"$gt": last}}, {"keys": 1, "last": 1, "more": 1})
        docs = [d async for d in cursor.sort([("last", 1)]).limit(1)]
        if not docs:
            return
        for key in keys_of(docs[0]):
            if key > last:
                yield key
        if not docs[0]["more"]:
            return
        last = docs[0]["last"]


async def length_after(db: AsyncDatabase[Doc], name: str, last: str, cap: int) -> int:
    """Keys of the list after `last`, counted block by block up to `cap` or a little past it."""
    total = 0
    while total < cap:
        cursor = db.merchant_postings.find({"list": name, "last": {"$gt": last}}, {"n": 1, "last": 1, "more": 1})
        docs = [d async for d in cursor.sort([("last", 1)]).limit(2)]
        total += sum(int(d["n"]) for d in docs)
        if len(docs) < 2 or not docs[-1]["more"]:
            break
        last = docs[-1]["last"]
    return total


async def _holder(db: AsyncDatabase[Doc], name: str, key: str) -> Doc | None:
    """The block a key belongs in: the first whose last key is at or after it, else the list's last block."""
    cursor = db.merchant_postings.find({"list": name, "last": {"$gte": key}}).sort([("last", 1)]).limit(1)
    found = [d async for d in cursor]
    if found:
        return found[0]
    cursor = db.merchant_postings.find({"list": name}).sort([("last", -1)]).limit(1)
    found = [d async for d in cursor]
    return found[0] if found else None


async def _rewrite(db: AsyncDatabase[Doc], block: Doc, keys: list[str]) -> bool:
    """Replace a block's keys if nobody changed it since it was read (the keys string is the version).
    A list's head stays, even empty, while the list lives: a missing head means an empty list."""
    guard = {"_id": block["_id"], "keys": block["keys"]}
    name, is_head = block["list"], block["_id"] == block["list"]
    if not keys and not is_head:
        return (await db.merchant_postings.delete_one(guard)).deleted_count == 1
    if len(keys) > SPLIT_AT:
        half = len(keys) // 2
        first = _block(name, keys[:half], head=is_head, more=True)
        done = (await db.merchant_postings.replace_one(guard, {**first, "_id": block["_id"]})).matched_count == 1
        if done:
            await db.merchant_postings.insert_one(_block(name, keys[half:], head=False, more=block["more"]))
        return done
    body = _block(name, keys, head=is_head, more=block["more"])
    body["_id"] = block["_id"]
    return (await db.merchant_postings.replace_one(guard, body)).matched_count == 1


async def add(db: AsyncDatabase[Doc], name: str, key: str) -> None:
    for _ in range(20):
        block = await _holder(db, name, key)
        if block is None:
            await db.merchant_postings.bulk_write([InsertOne(_block(name, [key], head=True, more=False))],
                                                  ordered=False)
            return
        keys = keys_of(block)
        if key in keys:
            return
        if await _rewrite(db, block, sorted([*keys, key])):
            return
    raise RuntimeError(f"postings list {name!r} kept changing while adding {key!r}")


async def remove(db: AsyncDatabase[Doc], name: str, key: str) -> None:
    for _ in range(20):
        cursor = db.merchant_postings.find({"list": name, "last": {"$gte": key}}).sort([("last", 1)]).limit(1)
        found = [d async for d in cursor]
        if not found or key not in (keys := keys_of(found[0])):
            return
        if await _rewrite(db, found[0], [k for k in keys if k != key]):
            return
    raise RuntimeError(f"postings list {name!r} kept changing while removing {key!r}")
