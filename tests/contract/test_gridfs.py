"""Contract tests: the GridFS behaviour pictures rely on (server/domain/images/repository.py).

Run against the embedded nx-27017 by default and against real MongoDB with TEST_MONGODB_URL, like
test_mongo_assumptions.py. PyMongo's own async GridFS (`gridfs.AsyncGridFSBucket`) is used on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists, NoFile
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from server.domain.images import repository
from tests.conftest import unique_db
from tests.contract.test_mongo_assumptions import EMBEDDED_GAP

Doc = dict[str, Any]
BIG = bytes(range(256)) * 2100  # 537,600 bytes: three chunks of GridFS's default 255 KiB


@pytest.fixture(scope="module")
async def db(db_client: AsyncMongoClient[Doc]) -> AsyncIterator[AsyncDatabase[Doc]]:
    name = unique_db("gridfs")
    yield db_client[name]
    await db_client.drop_database(name)


async def test_a_file_under_our_own_id_round_trips_across_chunks(db: AsyncDatabase[Doc]) -> None:
    bucket = AsyncGridFSBucket(db, bucket_name="rt")
    await bucket.upload_from_stream_with_id("k-640", "k-640.webp", BIG, metadata={"key": "k"})
    stream = await bucket.open_download_stream("k-640")
    assert await stream.read() == BIG and stream.length == len(BIG) and stream.metadata == {"key": "k"}


async def test_files_are_found_by_metadata_and_id(db: AsyncDatabase[Doc]) -> None:
    bucket = AsyncGridFSBucket(db, bucket_name="meta")
    for width in (320, 640):
        await bucket.upload_from_stream_with_id(f"m-{width}", "x.webp", b"x" * width, metadata={"key": "m"})
    assert sorted([f._id async for f in bucket.find({"metadata.key": "m"})]) == ["m-320", "m-640"]
    found = await db["meta.files"].find_one({"_id": "m-320"})
    assert found is not None and found["length"] == 320


async def test_delete_removes_the_file_and_its_chunks(db: AsyncDatabase[Doc]) -> None:
    bucket = AsyncGridFSBucket(db, bucket_name="del")
    await bucket.upload_from_stream_with_id("d-1", "d.webp", BIG)
    await bucket.delete("d-1")
    with pytest.raises(NoFile):
        await bucket.open_download_stream("d-1")
    assert await db["del.chunks"].find_one({"files_id": "d-1"}) is None


async def test_gridfs_same_id_twice_fails_and_keeps_the_first(db: AsyncDatabase[Doc]) -> None:
    # Two first requests for one picture may both store it: the second fails, the first stays whole.
    # MongoDB raises FileExists; nx-27017 a bare OperationFailure (the repository accepts either).
    bucket = AsyncGridFSBucket(db, bucket_name="twice")
    await bucket.upload_from_stream_with_id("t-1", "t.webp", BIG)
    with pytest.raises((FileExists, OperationFailure)):
        await bucket.upload_from_stream_with_id("t-1", "t.webp", b"other")
    assert await (await bucket.open_download_stream("t-1")).read() == BIG


async def test_store_variants_twice_is_harmless(db: AsyncDatabase[Doc]) -> None:
    variants = {320: b"a" * 320, 640: b"b" * 640}
    for _ in range(2):
        await repository.store_variants(db, "v" * 24, variants)
    assert await repository.read_variant(db, "v" * 24, 640) == variants[640]
    assert await repository.read_variant(db, "v" * 24, 1024) is None


@EMBEDDED_GAP
async def test_gap_count_documents_on_gridfs_collections(db: AsyncDatabase[Doc]) -> None:
    # nx-27017 answers "no such column: data": the repository checks with find_one instead
    bucket = AsyncGridFSBucket(db, bucket_name="count")
    await bucket.upload_from_stream_with_id("c-1", "c.webp", b"c")
    assert await db["count.files"].count_documents({}) == 1


@EMBEDDED_GAP
async def test_gap_same_id_twice_is_file_exists(db: AsyncDatabase[Doc]) -> None:
    bucket = AsyncGridFSBucket(db, bucket_name="exists")
    await bucket.upload_from_stream_with_id("e-1", "e.webp", b"e")
    with pytest.raises(FileExists):
        await bucket.upload_from_stream_with_id("e-1", "e.webp", b"e")


@EMBEDDED_GAP
async def test_gap_deleting_a_missing_file_is_no_file(db: AsyncDatabase[Doc]) -> None:
    # nx-27017 raises a bare OperationFailure: the repository deletes only files it has just found
    with pytest.raises(NoFile):
        await AsyncGridFSBucket(db, bucket_name="missing").delete("nothing")


@EMBEDDED_GAP
async def test_gap_projection_on_gridfs_collections(db: AsyncDatabase[Doc]) -> None:
    # nx-27017 returns whole documents (chunks with their data): the repository never relies on it
    bucket = AsyncGridFSBucket(db, bucket_name="project")
    await bucket.upload_from_stream_with_id("p-1", "p.webp", b"p")
    assert await db["project.files"].find_one({"_id": "p-1"}, {"_id": 1}) == {"_id": "p-1"}
