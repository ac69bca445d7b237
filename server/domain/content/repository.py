"""The content loader's queries: syncing a content-loaded collection with the files, and the manifest that
lets an unchanged `content/` folder skip the load.

Every collection the loader fills is synced the same way, so the queries are one set here rather than one
per area; documents the back office edited since (origin other than "content") are left alone by the
loader's rule, which it decides from `sync_states`.
"""

from __future__ import annotations

from pymongo import DeleteOne, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from server.services.mongo import Doc

MANIFEST_ID = "content"
LOADING = "loading"  # set on the manifest while a load runs (the loader rebuilds what it derives when it finds it)
BULK_SLICE = 5000
DUPLICATE_KEY = 11000


async def manifest(db: AsyncDatabase[Doc]) -> Doc | None:
    return await db.content_manifest.find_one({"_id": MANIFEST_ID})


async def mark_loading(db: AsyncDatabase[Doc]) -> None:
    """The manifest (if any) says a load began; save_manifest, at its end, writes it whole without the mark."""
    await db.content_manifest.update_one({"_id": MANIFEST_ID}, {"$set": {LOADING: True}})


async def save_manifest(db: AsyncDatabase[Doc], digest: str, counts: dict[str, int], code: str = "") -> None:
    """`code`: the digest of the deriving code alone, so that a load knows whether derived lists are current."""
    # the _id is repeated in the replacement: nx-27017's upsert would otherwise give it an ObjectId (tests/contract)
    await db.content_manifest.replace_one({"_id": MANIFEST_ID}, {"_id": MANIFEST_ID, "digest": digest,
                                                                 "counts": counts, "code": code}, upsert=True)


async def sync_states(db: AsyncDatabase[Doc], collection: str, kept: tuple[str, ...] = (),
                      ids: list[str] | None = None) -> dict[str, Doc]:
    """Each document's origin, content hash and the `kept` fields (those the app changes after a load), by _id;
    of every document, or of these ids."""
    projection = dict.fromkeys(("origin", "content_hash", *kept), 1)
    query = {} if ids is None else {"_id": {"$in": ids}}
    return {d["_id"]: d async for d in db[collection].find(query, projection)}


def unchanged_since(state: Doc, kept: tuple[str, ...]) -> Doc:
    """A filter that matches the document only while its origin, content hash and `kept` fields are still as
    `state` (read by sync_states) says: a replace under it cannot undo a write made since the read."""
    return {"_id": state["_id"], **{name: state[name] if name in state else {"$exists": False}
                                    for name in ("origin", "content_hash", *kept)}}


async def write_changes(db: AsyncDatabase[Doc], collection: str, changes: list[tuple[Doc | None, Doc]],
                        stale: list[str]) -> set[str]:
    """Insert each changed document (no filter) or replace it where its filter still matches; delete the stale
    ids; unordered, in slices.  A replace whose filter no longer matches writes nothing: the caller reads again.
    Returns the ids whose insert found a document there already (another loader's, a back-office write)."""
    ops: list[InsertOne[Doc] | ReplaceOne[Doc] | DeleteOne] = [
        InsertOne(doc) if where is None else ReplaceOne(where, doc) for where, doc in changes]
    ops.extend(DeleteOne({"_id": i}) for i in stale)
    taken: set[str] = set()
    for start in range(0, len(ops), BULK_SLICE):
        part = ops[start:start + BULK_SLICE]
        try:
            await db[collection].bulk_write(part, ordered=False)
        except BulkWriteError as error:
            failed = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY or not isinstance(part[e["index"]], InsertOne) for e in failed):
                raise
            taken.update(e["op"]["_id"] for e in failed)
    return taken
