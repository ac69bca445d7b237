"""More Redis calls at once than the client has connections: they wait their turn, nothing fails; and a call
that finds no free connection at all is this process being busy, not Redis down.

Under a backlog hundreds of requests are in flight, each holding a connection until this process's loop reads
its answer. redis-py's default pool then raised MaxConnectionsError, which the public cache took for Redis
being down: it paused and sent every read to MongoDB (bench/load.py's soak collapsed on it, issue 13).
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from server.plumbing.ratelimit import Limiter
from server.services import redis
from server.services.public_cache import PublicCache
from tests.conftest import unique_db


async def _hold(client: Redis, key: str) -> bytes | None:
    """Holds one of `client`'s pooled connections until something is pushed to `key` (BLPOP)."""
    got = await client.blpop([key], timeout=30)
    return got[1] if got else None


async def test_more_cache_reads_than_connections_all_hit_and_the_cache_stays_in_use(redis_url: str) -> None:
    client = redis.connect(redis_url, decode_responses=False, max_connections=2)
    other = redis.connect(redis_url, decode_responses=False)
    cache = PublicCache(client, unique_db("pool"), max_entry_bytes=1 << 20)
    waits = [f"{cache.entry_prefix}wait:{i}" for i in range(2)]
    try:
        first = await cache.lookup("page", ["district:x"])
        assert first is not None and first.versions is not None
        assert await cache.store("page", first.versions, '"e1"', "application/json", b'{"data":{}}', 60_000)
        found = await asyncio.gather(*(cache.lookup("page", ["district:x"]) for _ in range(50)))
        assert all(f is not None and f.entry is not None and f.entry.body == b'{"data":{}}' for f in found)
        assert await cache.usable()  # not paused: a busy pool is not Redis down
        # Every connection came back to the pool: both can be held at once again, each by a blocking call
        # that returns only when fed (one leaked would leave the second without a connection: an error).
        held = [asyncio.create_task(_hold(client, key)) for key in waits]
        while sum(1 for c in await other.client_list() if c.get("cmd") == "blpop") < 2:
            await asyncio.sleep(0.02)
        for key in waits:
            await other.rpush(key, b"fed")
        assert await asyncio.gather(*held) == [b"fed", b"fed"]
    finally:
        await client.delete(cache.tags_key, cache.entry_prefix + "page", *waits)
        await client.aclose()
        await other.aclose()


async def test_no_free_connection_is_busy_not_down_the_cache_and_limiter_keep_using_redis(redis_url: str) -> None:
    """Every connection held by this process's own calls: a read finds none within the pool's wait and falls back
    to MongoDB alone (None), a rate-limit charge lets its request through; neither pauses, so the next calls use
    Redis as soon as a connection is free. (With the pool's wait longer than their 3 s call limit, the call
    timed out instead and paused the cache and the limiter: every read to MongoDB.)"""
    client = redis.connect(redis_url, decode_responses=False, max_connections=1)
    other = redis.connect(redis_url, decode_responses=False)
    cache = PublicCache(client, unique_db("busy"), max_entry_bytes=1 << 20)
    limiter = Limiter(client, 60)
    bucket = unique_db("t")
    wait = f"{cache.entry_prefix}wait"
    held: asyncio.Task[bytes | None] | None = None
    try:
        first = await cache.lookup("page", ["district:x"])
        assert first is not None and first.versions is not None
        assert await cache.store("page", first.versions, '"e1"', "application/json", b"{}", 60_000)
        held = asyncio.create_task(_hold(client, wait))  # the pool's only connection
        while not any(c.get("cmd") == "blpop" for c in await other.client_list()):
            await asyncio.sleep(0.02)
        assert await cache.lookup("page", ["district:x"]) is None  # no connection: this read goes to MongoDB
        assert await limiter.charge(bucket, "ip:1", 1, 1) == 0  # let through
        assert await cache.usable()  # not paused
        await other.rpush(wait, b"fed")
        assert await held == b"fed"
        again = await cache.lookup("page", ["district:x"])
        assert again is not None and again.entry is not None and again.entry.body == b"{}"
        assert await limiter.charge(bucket, "ip:1", 2, 1) > 0  # not paused: counted in Redis, and over its limit
    finally:
        if held is not None and not held.done():
            await other.rpush(wait, b"fed")
            await held
        await other.delete(cache.tags_key, cache.entry_prefix + "page", wait, *await other.keys(f"rl:{bucket}:*"))
        await client.aclose()
        await other.aclose()
