"""The public cache's lookups of one turn of the event loop go to Redis in one pipeline
(server/services/public_cache.py, `_Batch`): each still gets exactly its own answer, and each still sees every write
acknowledged before it was asked, whoever wrote it (another connection here, as another web process would be; the
randomized two-app test in tests/api/test_public_cache.py is the cross-process one)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from server.services import redis
from server.services.public_cache import BATCH_MAX, PublicCache
from tests.conftest import unique_db

TAGS = ["district:a"]


def _body(i: int) -> bytes:
    return b'{"data":{"i":%d}}' % i


async def test_lookups_asked_together_share_a_round_trip_and_each_gets_its_own_answer(redis_url: str) -> None:
    namespace = unique_db("batch")
    separator = "&" if "?" in redis_url else "?"
    client = redis.connect(f"{redis_url}{separator}client_name={namespace}", decode_responses=False)
    other = redis.connect(redis_url)
    cache = PublicCache(client, namespace, max_entry_bytes=1 << 20)
    elsewhere = PublicCache(redis.connect(redis_url, decode_responses=False), namespace, max_entry_bytes=1 << 20)
    try:
        first = await cache.lookup("k0", TAGS)
        assert first is not None and first.versions is not None
        for i in range(0, 20, 2):  # the odd keys are never stored
            assert await cache.store(f"k{i}", first.versions, f'"e{i}"', "application/json", _body(i), 60_000)
        asks = [(f"k{i}", etags) for i in range(20) for etags in ((), (f'"e{i}"',))]
        found = await asyncio.gather(*(cache.lookup(key, TAGS, etags=etags) for key, etags in asks))
        for (key, etags), lookup in zip(asks, found, strict=True):
            i = int(key[1:])
            assert lookup is not None and lookup.versions == first.versions
            if i % 2:
                assert lookup.entry is None, key
            elif etags == (f'"e{i}"',):  # the client has it: the header only, for a 304
                assert lookup.entry is not None and (lookup.entry.etag, lookup.entry.body) == (f'"e{i}"', b""), key
            else:
                assert lookup.entry is not None and lookup.entry.body == _body(i), key
        # 40 lookups in flight at once went out together: the pool never needed a second connection
        assert len([c for c in await other.client_list() if c.get("name") == namespace]) == 1
        # an old ETag needs the body after all (a second round trip of its own)
        old = await asyncio.gather(*(cache.lookup(f"k{i}", TAGS, etags=('"old"',)) for i in range(20)))
        assert [lookup.entry.body if lookup and lookup.entry else None for lookup in old] == \
            [None if i % 2 else _body(i) for i in range(20)]

        # another connection (as another web process) outdates the district; every lookup asked after it misses
        assert await elsewhere.bump(TAGS)
        after = await asyncio.gather(*(cache.lookup(f"k{i}", TAGS) for i in range(0, 20, 2)))
        assert all(lookup is not None and lookup.entry is None and lookup.versions != first.versions
                   for lookup in after)
    finally:
        await _forget(other, namespace)
        await client.aclose()
        await other.aclose()
        await elsewhere.redis.aclose()


async def _forget(other: Redis, namespace: str) -> None:
    """The test's cache entries and versions go, so a rerun against the same Redis starts clean."""
    keys = [k async for k in other.scan_iter(match=f"sq:pc:{namespace}:*")]
    if keys:
        await other.delete(*keys)


async def test_a_failed_round_trip_fails_every_lookup_that_shared_it(redis_url: str) -> None:
    """Redis refusing: each lookup of the batch falls back to MongoDB (None), and the cache steps aside."""
    client = redis.connect("redis://127.0.0.1:1/0", decode_responses=False)  # nothing listens on port 1
    cache = PublicCache(client, unique_db("batch-down"), max_entry_bytes=1 << 20)
    try:
        found = await asyncio.gather(*(cache.lookup(f"k{i}", TAGS) for i in range(10)))
        assert found == [None] * 10
        assert not await cache.usable()
    finally:
        await client.aclose()


async def test_one_bad_key_fails_its_own_lookup_only_a_cancelled_one_is_skipped_and_a_batch_is_capped(
        redis_url: str) -> None:
    namespace = unique_db("batch-parts")
    separator = "&" if "?" in redis_url else "?"
    client = redis.connect(f"{redis_url}{separator}client_name={namespace}", decode_responses=False)
    other = redis.connect(redis_url)
    cache = PublicCache(client, namespace, max_entry_bytes=1 << 20)
    try:
        first = await cache.lookup("k0", TAGS)
        assert first is not None and first.versions is not None
        for i in range(10):
            assert await cache.store(f"k{i}", first.versions, f'"e{i}"', "application/json", _body(i), 60_000)
        await other.delete(cache.entry_prefix + "k5")
        await other.hset(cache.entry_prefix + "k5", "x", "y")  # WRONGTYPE for its GET
        lookups = [asyncio.ensure_future(cache.lookup(f"k{i}", TAGS)) for i in range(10)]
        await asyncio.sleep(0)  # each lookup has joined the batch, which goes out in the next turn
        lookups[3].cancel()  # its client went away while the batch was on its way
        found = await asyncio.gather(*lookups, return_exceptions=True)
        assert isinstance(found[3], asyncio.CancelledError)
        assert found[5] is None  # that one read goes to MongoDB
        assert await cache.usable()  # Redis answered (an error about one key): not down, the cache stays in use
        for i in (0, 1, 2, 4, 6, 7, 8, 9):
            lookup = found[i]
            assert not isinstance(lookup, BaseException) and lookup is not None and lookup.entry is not None
            assert lookup.entry.body == _body(i)

        await other.delete(cache.entry_prefix + "k5")
        many = await asyncio.gather(*(cache.lookup(f"k{i % 10}", TAGS) for i in range(BATCH_MAX + 1)))
        assert all(lookup is not None and (lookup.entry is not None) == (i % 10 != 5) for i, lookup in enumerate(many))
        # one more lookup than a batch holds: two round trips, on two connections at once
        assert len([c for c in await other.client_list() if c.get("name") == namespace]) == 2
    finally:
        await _forget(other, namespace)
        await client.aclose()
        await other.aclose()
