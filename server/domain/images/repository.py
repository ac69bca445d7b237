"""Image records (collection `images`) and their WebP bytes (GridFS bucket `image_files`).

A page's pictures are read by primary key, in two commands whatever the city holds: each owner's list
of uploaded pictures (`images_by_owner`, `_id` the owner ref), then those records and the owners'
content pictures (whose `_id` the owner gives, models.content_image_id) by `_id`.  A query on `owner`
cannot be that read: nx-27017 checks `$in` on any field but `_id` row by row, so it read every image.
A list changes only by `$addToSet` / `$pull` of one id (two uploads at once both stay listed); an id
is listed before its record is written and unlisted after it is deleted, so a list can only name a
record that is not there (skipped) and never miss one that is.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists, NoFile
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from server.domain.images.models import Image, content_image_id, owner_ref, split_ref
from server.services.mongo import Doc

BUCKET = "image_files"


def _bucket(db: AsyncDatabase[Doc]) -> AsyncGridFSBucket:
    return AsyncGridFSBucket(db, bucket_name=BUCKET)


def file_id(key: str, width: int) -> str:
    return f"{key}-{width}"


async def by_owners(db: AsyncDatabase[Doc], refs: list[str]) -> dict[str, list[Image]]:
    """Each owner's pictures in (position, _id) order: uploads by their time, then the content picture."""
    wanted = {content_image_id(*split_ref(ref)): None for ref in refs}
    async for listed in db.images_by_owner.find({"_id": {"$in": refs}}):
        wanted.update(dict.fromkeys(listed.get("ids", [])))
    out: dict[str, list[Image]] = defaultdict(list)
    owners = set(refs)
    docs = [d async for d in db.images.find({"_id": {"$in": list(wanted)}})]
    for doc in sorted(docs, key=lambda d: (d.get("position", 0), d["_id"])):  # a handful per owner: sorted here
        if doc["owner"] in owners:
            out[doc["owner"]].append(Image.from_doc(doc))
    return out


async def list_image(db: AsyncDatabase[Doc], ref: str, image_id: str) -> None:
    try:
        await db.images_by_owner.update_one({"_id": ref}, {"$addToSet": {"ids": image_id}}, upsert=True)
    except DuplicateKeyError:  # a second first upload to this owner created the list in the same moment
        await db.images_by_owner.update_one({"_id": ref}, {"$addToSet": {"ids": image_id}})


async def unlist_image(db: AsyncDatabase[Doc], ref: str, image_id: str) -> None:
    await db.images_by_owner.update_one({"_id": ref}, {"$pull": {"ids": image_id}})


async def list_uploads(db: AsyncDatabase[Doc]) -> None:
    """Lists every uploaded picture (the content loader, after it wrote images): uploads stored before the
    lists existed become visible.  Only adds, so an upload at the same time is never lost; a picture deleted
    meanwhile may stay listed, which a read skips."""
    found: dict[str, list[str]] = defaultdict(list)
    async for doc in db.images.find({"origin": "backoffice"}, {"owner": 1}):
        found[doc["owner"]].append(doc["_id"])
    for ref, ids in sorted(found.items()):
        await db.images_by_owner.update_one({"_id": ref}, {"$addToSet": {"ids": {"$each": sorted(ids)}}},
                                            upsert=True)


async def count_of_owner(db: AsyncDatabase[Doc], ref: str) -> int:
    return await db.images.count_documents({"owner": ref})


async def image_doc(db: AsyncDatabase[Doc], image_id: str) -> Doc | None:
    return await db.images.find_one({"_id": image_id})


async def generated_by_key(db: AsyncDatabase[Doc], key: str) -> Doc | None:
    return await db.images.find_one({"key": key, "generated": {"$exists": True}})


async def key_in_use(db: AsyncDatabase[Doc], key: str) -> bool:
    return await db.images.find_one({"key": key}, {"_id": 1}) is not None


async def insert_image(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.images.insert_one(doc)


async def delete_image(db: AsyncDatabase[Doc], image_id: str) -> None:
    await db.images.delete_one({"_id": image_id})


async def store_variants(db: AsyncDatabase[Doc], key: str, variants: dict[int, bytes]) -> None:
    """Each width as one GridFS file; a width stored already (same key, same bytes) is left as it is."""
    bucket = _bucket(db)
    for width, data in sorted(variants.items()):
        fid = file_id(key, width)
        if await _stored(db, fid):
            continue
        try:
            await bucket.upload_from_stream_with_id(fid, f"{fid}.webp", data,
                                                    metadata={"contentType": "image/webp", "key": key})
        except (FileExists, OperationFailure):
            # A concurrent first request stored the same bytes: MongoDB says FileExists, nx-27017 a bare
            # OperationFailure on the chunks' unique index (tests/contract: test_gridfs_same_id_twice).
            if not await _stored(db, fid):
                raise


async def _stored(db: AsyncDatabase[Doc], fid: str) -> bool:
    # find_one, not count_documents: nx-27017 cannot count a GridFS collection (tests/contract)
    return await db[f"{BUCKET}.files"].find_one({"_id": fid}, {"_id": 1}) is not None


async def read_variant(db: AsyncDatabase[Doc], key: str, width: int) -> bytes | None:
    try:
        stream = await _bucket(db).open_download_stream(file_id(key, width))
    except NoFile:
        return None
    data: bytes = await stream.read()
    return data


async def delete_variants(db: AsyncDatabase[Doc], key: str, widths: tuple[int, ...] | list[int]) -> None:
    bucket = _bucket(db)
    for width in widths:
        # only files just seen: deleting a missing one is NoFile on MongoDB, a bare error on nx-27017
        if await _stored(db, file_id(key, width)):
            await bucket.delete(file_id(key, width))


def as_doc(image: Image, extra: dict[str, Any]) -> Doc:
    return {"_id": image.id, "key": image.key, "owner_kind": image.owner_kind, "owner_id": image.owner_id,
            "owner": owner_ref(image.owner_kind, image.owner_id), "alt": dict(image.alt), "width": image.width,
            "height": image.height, "widths": list(image.widths), **extra}
