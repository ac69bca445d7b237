"""The postings' stored format over the real driver and nx-27017: blocks and buckets written by code from before
compression (keys uncompressed in `keys`/`lists`, whatever their number) are read and edited without losing a
key; compressed ones live in new fields (`z`/`zlists`) that older code cannot misread; the 31/32 boundary; and a
rebuild whose pipelined slice write fails raises that failure and leaves no task behind."""

from __future__ import annotations

import asyncio
import base64
import gc
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from server.domain.merchants import postings
from server.domain.merchants import postings_repository as store
from server.services import mongo
from tests.conftest import unique_db

Doc = dict[str, Any]


@pytest.fixture
async def db(mongo_url: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    client: AsyncMongoClient[Doc] = mongo.connect(mongo_url)
    name = unique_db("postings_format")
    database = client[name]
    await mongo.ensure_indexes(database)
    yield database
    await client.drop_database(name)
    await client.close()


def _old_encode(keys: list[str]) -> str:
    """The encoding of code from before compression (main at eb528e8): shared prefix, then each key's rest."""
    first, last = keys[0], keys[-1]
    shared = 0
    while shared < min(len(first), len(last)) and first[shared] == last[shared]:
        shared += 1
    return keys[0][:shared] + "\n" + "\n".join(k[shared:] for k in keys)


async def _read(db: AsyncDatabase[Doc], name: str) -> list[str]:
    return [k async for k in postings.merged(db, [name], None, await postings.heads(db, [name]))]


async def test_old_format_blocks_of_32_keys_and_more_are_read_and_edited_without_losing_a_key(
        db: AsyncDatabase[Doc]) -> None:
    name = postings.search_list(2, "zz-old")
    keys = [f"m-{i:04d}" for i in range(0, 1200, 2)]  # 600 keys: two blocks as older code cut them
    head, rest = keys[:store.BLOCK], keys[store.BLOCK:]
    await db.merchant_postings.insert_many([
        {"_id": name, "list": name, "last": head[-1], "n": len(head), "keys": _old_encode(head), "more": True},
        {"_id": f"{name}|{rest[0]}", "list": name, "last": rest[-1], "n": len(rest), "keys": _old_encode(rest),
         "more": False}])
    assert await _read(db, name) == keys
    await store.add(db, name, "m-0001")  # into the head
    await store.add(db, name, "m-1101")  # into the second block
    await store.remove(db, name, "m-0100")
    await store.remove(db, name, "m-1000")
    expected = sorted({*keys, "m-0001", "m-1101"} - {"m-0100", "m-1000"})
    assert await _read(db, name) == expected
    assert (await store.every_list(db))[name] == expected
    for doc in [d async for d in db.merchant_postings.find({"list": name})]:
        # rewritten compressed, in the new field only: older code finds no `keys` and fails, writing nothing
        assert "keys" not in doc and doc["z"].startswith(store.COMPRESSED)


async def test_an_old_format_bucket_grows_into_the_new_field_keeping_its_other_lists(
        db: AsyncDatabase[Doc]) -> None:
    name = postings.search_list(2, "zz-bucket")
    neighbour = "zz-neighbour"  # another list of the same bucket, as older code wrote it
    bid = store.bucket_id(name)
    first = [f"a{i:02d}" for i in range(15)]
    await db.merchant_postings.insert_one(
        {"_id": bid, "lists": f"{name}\t{_old_encode(first)}\x1e{neighbour}\t{_old_encode(['x1', 'x2'])}"})
    grown = [*first, *(f"b{i:02d}" for i in range(store.COMPRESS_AT - len(first) - 1))]
    for key in grown[len(first):]:
        await store.add(db, name, key)
    bucket = await db.merchant_postings.find_one({"_id": bid})
    assert bucket is not None and "lists" in bucket and "zlists" not in bucket  # 31 keys: not compressed
    await store.add(db, name, "c00")  # the 32nd
    bucket = await db.merchant_postings.find_one({"_id": bid})
    assert bucket is not None and "lists" not in bucket and "zlists" in bucket
    lists = await store.every_list(db)
    assert lists[name] == sorted([*grown, "c00"]) and lists[neighbour] == ["x1", "x2"]
    assert await _read(db, name) == sorted([*grown, "c00"])
    await store.remove(db, name, "c00")  # back to 31: the old field again
    bucket = await db.merchant_postings.find_one({"_id": bid})
    assert bucket is not None and "lists" in bucket and "zlists" not in bucket
    assert (await store.every_list(db))[neighbour] == ["x1", "x2"]


async def test_a_head_block_is_compressed_from_32_keys_and_not_below(db: AsyncDatabase[Doc]) -> None:
    assert not store.encode([f"k{i:02d}" for i in range(store.COMPRESS_AT - 1)]).startswith(store.COMPRESSED)
    assert store.encode([f"k{i:02d}" for i in range(store.COMPRESS_AT)]).startswith(store.COMPRESSED)
    name = postings.search_list(2, "zz-head")
    keys = [f"k{i:03d}" for i in range(store.SMALL)]
    for key in keys:
        await store.add(db, name, key)
    for key in keys[store.COMPRESS_AT:]:
        await store.remove(db, name, key)
    head = await db.merchant_postings.find_one({"_id": name})
    assert head is not None and "keys" not in head and head["n"] == store.COMPRESS_AT
    await store.remove(db, name, keys[0])
    head = await db.merchant_postings.find_one({"_id": name})
    assert head is not None and "z" not in head and head["keys"] == _old_encode(keys[1:store.COMPRESS_AT])
    assert await _read(db, name) == keys[1:store.COMPRESS_AT]


async def test_a_rebuild_does_not_rewrite_blocks_whose_keys_are_unchanged_whatever_their_encoding(
        db: AsyncDatabase[Doc]) -> None:
    keys = [f"m-{i:03d}" for i in range(100)]
    name = postings.search_list(2, "zz-same")
    await db.merchant_postings.insert_one(
        {"_id": name, "list": name, "last": keys[-1], "n": len(keys), "keys": _old_encode(keys), "more": False})
    assert await store.replace_all(db, {name: list(keys)}) == 0  # same keys stored by older code: left be
    await db.merchant_postings.replace_one(  # the same keys, compressed by another zlib (level 9 here)
        {"_id": name}, {"list": name, "last": keys[-1], "n": len(keys), "more": False,
                        "z": store.COMPRESSED + base64.b64encode(zlib.compress("\n".join(keys).encode(), 9)).decode()})
    assert await store.replace_all(db, {name: list(keys)}) == 0
    assert await store.replace_all(db, {name: [*keys, "m-999"]}) == 1


def _upsert_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if "_upsert" in getattr(t.get_coro(), "__qualname__", "")]


async def test_a_failed_slice_write_is_raised_and_leaves_no_task_behind(
        db: AsyncDatabase[Doc], monkeypatch: pytest.MonkeyPatch) -> None:
    """A real failure of the pipelined write: a unique index the heads break (all hold 64 keys), so each write
    after the first collides whether inserted or replaced, until the retries run out."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    monkeypatch.setattr(store, "BULK_SLICE", 4)
    await db.merchant_postings.create_index("n", unique=True)
    lists = {postings.search_list(2, f"zz-fail-{i}"): [f"m-{j:03d}" for j in range(store.SMALL)] for i in range(9)}
    with pytest.raises(RuntimeError, match="kept colliding"):
        await store.replace_all(db, lists)
    assert not [t for t in _upsert_tasks() if not t.done()]
    gc.collect()
    await asyncio.sleep(0)
    assert not errors


async def test_a_failure_while_a_slice_is_being_written_awaits_that_write(
        db: AsyncDatabase[Doc], monkeypatch: pytest.MonkeyPatch) -> None:
    """The rebuild fails (here: a list whose keys cannot be sorted) while the previous slice is being written:
    that write is cancelled and awaited, not left pending, and nothing is reported as never retrieved."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    monkeypatch.setattr(store, "BULK_SLICE", 4)
    lists: dict[str, list[Any]] = {postings.search_list(2, f"zz-ok-{i}"): [f"m-{j:03d}" for j in range(store.SMALL)]
                                   for i in range(5)}
    lists["zz-bad"] = [*(f"m-{j:03d}" for j in range(store.SMALL)), 1]
    with pytest.raises(TypeError):
        await store.replace_all(db, lists)
    assert not [t for t in _upsert_tasks() if not t.done()]
    gc.collect()
    await asyncio.sleep(0)
    assert not errors
