"""Image records (collection `images`) and their WebP bytes (GridFS bucket `image_files`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists, NoFile
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from server.domain.images.models import Image, owner_ref
from server.services.mongo import Doc

BUCKET = "image_files"


def _bucket(db: AsyncDatabase[Doc]) -> AsyncGridFSBucket:
    return AsyncGridFSBucket(db, bucket_name=BUCKET)


def file_id(key: str, width: int) -> str:
    return f"{key}-{width}"


async def by_owners(db: AsyncDatabase[Doc], refs: list[str]) -> dict[str, list[Image]]:
    out: dict[str, list[Image]] = defaultdict(list)
    async for doc in db.images.find({"owner": {"$in": refs}}).sort([("position", 1), ("_id", 1)]):
        out[doc["owner"]].append(Image.from_doc(doc))
    return out


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
