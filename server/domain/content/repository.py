"""The content loader's queries: syncing a content-loaded collection with the files, and the manifest that
lets an unchanged `content/` folder skip the load.

Every collection the loader fills is synced the same way, so the queries are one set here rather than one
per area; documents the back office edited since (origin other than "content") are left alone by the
loader's rule, which it decides from `sync_states`.
"""

from __future__ import annotations

from pymongo import DeleteOne, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from server.services.mongo import Doc

MANIFEST_ID = "content"
BULK_SLICE = 5000


async def manifest(db: AsyncDatabase[Doc]) -> Doc | None:
    return await db.content_manifest.find_one({"_id": MANIFEST_ID})


async def save_manifest(db: AsyncDatabase[Doc], digest: str, counts: dict[str, int]) -> None:
    # the _id is repeated in the replacement: nx-27017's upsert would otherwise give it an ObjectId (tests/contract)
    await db.content_manifest.replace_one({"_id": MANIFEST_ID}, {"_id": MANIFEST_ID, "digest": digest,
                                                                 "counts": counts}, upsert=True)


async def sync_states(db: AsyncDatabase[Doc], collection: str) -> dict[str, Doc]:
    """Each document's origin and content hash, by _id."""
    return {d["_id"]: d async for d in db[collection].find({}, {"origin": 1, "content_hash": 1})}


async def write_changes(db: AsyncDatabase[Doc], collection: str, changes: list[tuple[bool, Doc]],
                        stale: list[str]) -> None:
    """Insert (True) or replace (False) each changed document, delete the stale ids; unordered, in slices."""
    ops: list[InsertOne[Doc] | ReplaceOne[Doc] | DeleteOne] = [
        InsertOne(doc) if new else ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for new, doc in changes]
    ops.extend(DeleteOne({"_id": i}) for i in stale)
    for start in range(0, len(ops), BULK_SLICE):
        await db[collection].bulk_write(ops[start:start + BULK_SLICE], ordered=False)
