"""More Redis calls at once than the client has connections: they wait their turn, nothing fails.

Under a backlog hundreds of requests are in flight, each holding a connection until this process's loop reads
its answer. redis-py's default pool then raised MaxConnectionsError, which the public cache took for Redis
being down: it paused and sent every read to MongoDB (bench/load.py's soak collapsed on it, issue 13).
"""

from __future__ import annotations

import asyncio

from server.services import redis
from server.services.public_cache import PublicCache
from tests.conftest import unique_db


async def test_more_cache_reads_than_connections_all_hit_and_the_cache_stays_in_use(redis_url: str) -> None:
    client = redis.connect(redis_url, decode_responses=False, max_connections=2)
    cache = PublicCache(client, unique_db("pool"), max_entry_bytes=1 << 20)
    try:
        first = await cache.lookup("page", ["district:x"])
        assert first is not None and first.versions is not None
        assert await cache.store("page", first.versions, '"e1"', "application/json", b'{"data":{}}', 60_000)
        found = await asyncio.gather(*(cache.lookup("page", ["district:x"]) for _ in range(50)))
        assert all(f is not None and f.entry is not None and f.entry.body == b'{"data":{}}' for f in found)
        assert await cache.usable()  # not paused: a busy pool is not Redis down
        assert len(client.connection_pool._in_use_connections) == 0  # every connection came back
    finally:
        await client.delete(cache.tags_key, cache.entry_prefix + "page")
        await client.aclose()
