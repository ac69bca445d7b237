"""Postings lists under concurrent back-office writes, over the real driver and nx-27017: writers that
race at a list's move from its bucket to a head block, or at a block's split, lose no key and show none
twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from server.domain.merchants import postings, postings_pending_repository, postings_repository
from server.services import mongo
from tests.conftest import unique_db

Doc = dict[str, Any]
SMALL = postings_repository.SMALL


@pytest.fixture(scope="module")
async def db(mongo_url: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    client: AsyncMongoClient[Doc] = mongo.connect(mongo_url)
    name = unique_db("postings_race")
    database = client[name]
    await mongo.ensure_indexes(database)
    yield database
    await client.drop_database(name)
    await client.close()


async def _read(db: AsyncDatabase[Doc], name: str, after: str | None = None) -> list[str]:
    return [k async for k in postings.merged(db, [name], after, await postings.heads(db, [name]))]


async def test_concurrent_adds_at_the_move_to_a_head_keep_every_key_once(db: AsyncDatabase[Doc]) -> None:
    for round_ in range(4):
        name = postings.search_list(2, f"zz-race-{round_}")
        first = [f"a{i:02d}" for i in range(SMALL - 1)]
        for key in first:
            await postings_repository.add(db, name, key)
        assert await db.merchant_postings.find_one({"_id": name}) is None  # still in its bucket
        racing = [f"b{i:02d}" for i in range(6)]
        await asyncio.gather(*(postings_repository.add(db, name, k) for k in racing))
        expected = sorted([*first, *racing])
        assert await _read(db, name) == expected
        # the bucket let the list go: the layout holds each key once
        assert (await postings_repository.every_list(db))[name] == expected


async def test_a_remove_racing_the_move_to_a_head_stays_removed(db: AsyncDatabase[Doc]) -> None:
    for round_ in range(4):
        name = postings.search_list(2, f"zz-race-rm-{round_}")
        first = [f"a{i:02d}" for i in range(SMALL - 1)]
        for key in first:
            await postings_repository.add(db, name, key)
        await asyncio.gather(postings_repository.add(db, name, "b00"), postings_repository.add(db, name, "b01"),
                             postings_repository.remove(db, name, "a03"), postings_repository.remove(db, name, "a07"))
        expected = sorted({*first, "b00", "b01"} - {"a03", "a07"})
        assert await _read(db, name) == expected
        assert (await postings_repository.every_list(db))[name] == expected


async def test_a_half_written_split_keeps_every_key_readable_once(db: AsyncDatabase[Doc]) -> None:
    """The split's first write (its second half) alone, as a crash would leave it: readers still see each
    key once, from the start and from a cursor in either half."""
    name = postings.search_list(2, "zz-split-half")
    keys = [f"k{i:04d}" for i in range(postings_repository.SPLIT_AT)]
    await postings_repository.add(db, name, keys[0])
    for key in keys[1:]:
        await postings_repository.add(db, name, key)
    assert await db.merchant_postings.count_documents({"list": name}) == 1  # one full head, not yet split
    half = len(keys) // 2
    await db.merchant_postings.insert_one(postings_repository._block(name, keys[half:], head=False, more=False))
    assert await _read(db, name) == keys
    assert await _read(db, name, keys[half + 3]) == keys[half + 4:]
    assert await _read(db, name, keys[10]) == keys[11:]


async def test_concurrent_adds_across_a_split_keep_every_key_once(db: AsyncDatabase[Doc]) -> None:
    name = postings.search_list(2, "zz-split-race")
    keys = [f"k{i:04d}" for i in range(0, 2 * postings_repository.SPLIT_AT, 2)]
    for key in keys:
        await postings_repository.add(db, name, key)
    racing = [f"k{i:04d}" for i in range(1, 80, 2)] + [f"k{i:04d}" for i in range(1801, 1880, 2)]
    await asyncio.gather(*(postings_repository.add(db, name, k) for k in racing))
    expected = sorted([*keys, *racing])
    assert await _read(db, name) == expected
    assert (await postings_repository.every_list(db))[name] == expected
    assert await postings.length(db, [name], 5000) == len(expected)


def _merchant(version: int, word: str, open_keys: list[int]) -> Doc:
    return {"_id": "m-race", "key": "m-race", "status": "published", "district_id": "d-race", "version": version,
            "name": {"en": f"Shop {word}"}, "address": {"en": f"{word} road"}, "categories": [],
            "description": {}, "open_keys": open_keys}


async def _lists_of(db: AsyncDatabase[Doc], key: str = "m-race") -> set[str]:
    return {name for name, keys in (await postings_repository.every_list(db)).items() if key in keys}


async def test_interleaved_saves_of_a_merchant_converge_to_its_stored_lists(db: AsyncDatabase[Doc]) -> None:
    async def stored() -> Doc | None:
        return await db.merchants.find_one({"_id": "m-race"})

    async def save(doc: Doc) -> None:
        await db.merchants.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    docs = [_merchant(1, "alpha", [10, 11]), _merchant(2, "bravo", [11, 12]), _merchant(3, "charlie", [12, 13]),
            _merchant(4, "delta", [13, 14]), _merchant(5, "echo", [10, 14])]
    entries = [postings.Entry.of(d) for d in docs]
    assert len({frozenset(e.lists()) for e in entries}) == len(entries)
    await save(docs[0])
    await postings.apply(db, None, entries[0], stored)
    assert await _lists_of(db, "m-race") == entries[0].lists()
    # both saves land, then the older save's apply runs last: it finds the merchant moved on
    await save(docs[1])
    await save(docs[2])
    await postings.apply(db, entries[1], entries[2], stored)
    await postings.apply(db, entries[0], entries[1], stored)
    assert await _lists_of(db, "m-race") == entries[2].lists()

    # side by side: the next save lands while this one's apply is under way
    async def later() -> None:
        await asyncio.sleep(0)
        await save(docs[4])
        await postings.apply(db, entries[3], entries[4], stored)

    await save(docs[3])
    await asyncio.gather(postings.apply(db, entries[2], entries[3], stored), later())
    assert await _lists_of(db, "m-race") == entries[4].lists()
    # an unpublished merchant leaves every list
    hidden = {**docs[4], "status": "hidden", "version": 6}
    await save(hidden)
    await postings.apply(db, entries[4], postings.Entry.of(hidden), stored)
    assert await _lists_of(db, "m-race") == set()


async def _failed_save(db: AsyncDatabase[Doc], key: str) -> tuple[list[Doc], list[postings.Entry]]:
    """A merchant saved twice, the second save's apply failing part way: its read of the merchant fails
    (as a lost connection would), and one of its lists never got the merchant."""
    docs = [{**_merchant(1, "foxtrot", [20, 21]), "_id": key, "key": key},
            {**_merchant(2, "golf", [21, 22]), "_id": key, "key": key},
            {**_merchant(3, "golf", [22, 23]), "_id": key, "key": key}]
    entries = [postings.Entry.of(d) for d in docs]

    async def stored() -> Doc | None:
        return await db.merchants.find_one({"_id": key})

    async def lost() -> Doc | None:
        raise ConnectionError("the database went away")

    await db.merchants.replace_one({"_id": key}, docs[0], upsert=True)
    await postings.apply(db, None, entries[0], stored)
    await db.merchants.replace_one({"_id": key}, docs[1])
    with pytest.raises(ConnectionError):
        await postings.apply(db, entries[0], entries[1], lost)
    shared = sorted(entries[1].lists() & entries[2].lists())[0]  # the next save's diff does not touch it
    await postings_repository.remove(db, shared, key)
    assert await postings_pending_repository.lists_of(db, key) is not None
    return docs, entries


async def test_a_failed_apply_is_settled_by_the_next_save(db: AsyncDatabase[Doc]) -> None:
    key = "m-failed-1"
    docs, entries = await _failed_save(db, key)

    async def stored() -> Doc | None:
        return await db.merchants.find_one({"_id": key})

    await db.merchants.replace_one({"_id": key}, docs[2])
    await postings.apply(db, entries[1], entries[2], stored)
    assert await _lists_of(db, key) == entries[2].lists()
    assert await postings_pending_repository.lists_of(db, key) is None


async def test_a_failed_apply_is_settled_at_start(db: AsyncDatabase[Doc]) -> None:
    key = "m-failed-2"
    _docs, entries = await _failed_save(db, key)

    async def stored(merchant_id: str) -> Doc | None:
        return await db.merchants.find_one({"_id": merchant_id})

    assert await postings.settle_pending(db, stored) >= 1
    assert await _lists_of(db, key) == entries[1].lists()
    assert await postings_pending_repository.lists_of(db, key) is None
    assert await postings.settle_pending(db, stored) == 0
