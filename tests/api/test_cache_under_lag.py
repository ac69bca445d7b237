"""The public cache steps aside when Redis is to blame, not when this process's own event loop is; and shopper
reads are answered from MongoDB while Redis hangs.

Both tests hold the same read in a Redis that answers late (`CLIENT PAUSE`, longer than the cache's 3 s call
limit), so the lookup fails the same way in both; what differs is whether the event loop was busy meanwhile.
The app runs in this test's event loop (tests/ops/servers.serve), so CPU work done here is CPU work in the
app's process, as a surge's requests would be: a loop that is genuinely busy, with nothing of ours replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from server.services.public_cache import CALL_TIMEOUT
from tests.api.test_public_cache import FIXTURES, district_screen, merchant_page
from tests.conftest import RunningApp, unique_db
from tests.ops.servers import RedisServer, eventually, serve

HELD_MS = int((CALL_TIMEOUT + 1.5) * 1000)  # Redis holds the read past the cache's limit, then answers again


@asynccontextmanager
async def own_redis_app(app_server: RunningApp, tmp_path: Path, *, budget: bool) -> AsyncIterator[
        tuple[httpx.AsyncClient, aioredis.Redis, RedisServer]]:
    """The app with a Redis of its own, its MerchantPage read cached."""
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = replace(app_server.settings, mongodb_db=unique_db("lag"), var_dir=tmp_path, content_dir=FIXTURES,
                       redis_url=redis.url)
    if not budget:
        settings = replace(settings, rate_limit_graphql_cost=0)
    admin = aioredis.from_url(redis.url)
    try:
        async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.get("/graphql", params=merchant_page())
            assert (await http.get("/graphql", params=merchant_page())).headers["x-cache"] == "hit"
            yield http, admin, redis
    finally:
        await admin.aclose()
        redis.stop()


@pytest.fixture
async def app_with_own_redis(app_server: RunningApp, tmp_path: Path) -> AsyncIterator[
        tuple[httpx.AsyncClient, aioredis.Redis]]:
    # the GraphQL budget is off: its own Redis call on the fallback path is the limiter's business, not this one's
    async with own_redis_app(app_server, tmp_path, budget=False) as (http, admin, _):
        yield http, admin


def busy(seconds: float) -> None:
    """Hash until `seconds` have passed: the event loop runs nothing else meanwhile."""
    block, end = b"\x00" * 65536, time.monotonic() + seconds
    while time.monotonic() < end:
        hashlib.sha256(block).digest()


async def test_a_read_held_by_a_hung_redis_sends_the_next_reads_to_mongodb(
        app_with_own_redis: tuple[httpx.AsyncClient, aioredis.Redis]) -> None:
    http, admin = app_with_own_redis
    await admin.execute_command("CLIENT", "PAUSE", HELD_MS, "ALL")
    held = await http.get("/graphql", params=merchant_page())
    assert held.status_code == 200 and held.json()["data"]["merchant"]["name"]
    assert held.headers.get("x-cache") != "hit"
    # Redis answers again in a moment, but the cache has stepped aside: this read goes to MongoDB
    after = await http.get("/graphql", params=merchant_page())
    assert after.status_code == 200 and after.headers.get("x-cache") is None

    async def cached_again() -> bool:
        return (await http.get("/graphql", params=merchant_page())).headers.get("x-cache") == "hit"

    assert await eventually(cached_again, within=30, every=0.5)


async def test_a_read_that_fails_while_the_event_loop_is_busy_leaves_the_cache_in_use(
        app_with_own_redis: tuple[httpx.AsyncClient, aioredis.Redis]) -> None:
    """The same held read, but this process's loop is stalled by CPU work for part of it: the read falls back
    alone, and the next one (Redis still holding it a little) is answered from the cache."""
    http, admin = app_with_own_redis
    await admin.execute_command("CLIENT", "PAUSE", HELD_MS, "ALL")
    held = asyncio.create_task(http.get("/graphql", params=merchant_page()))
    await asyncio.sleep(0.5)  # the app has sent its lookup and waits for Redis
    busy(1.5)  # ends well before the 3 s limit, so that limit's timer fires on time
    fell_back = await held
    assert fell_back.status_code == 200 and fell_back.json()["data"]["merchant"]["name"]
    assert fell_back.headers.get("x-cache") != "hit"
    after = await http.get("/graphql", params=merchant_page())
    assert after.status_code == 200 and after.headers.get("x-cache") == "hit", after.headers


async def test_shopper_reads_are_answered_from_mongodb_while_redis_hangs(app_server: RunningApp,
                                                                         tmp_path: Path) -> None:
    """A real redis-server stopped with SIGSTOP: it keeps its port and accepts connections but answers nothing,
    so every Redis call (the cache's lookup, the GraphQL budget's charge) can only time out. Reads that were
    cached, several at once and one after another, are still answered, from MongoDB, as misses."""
    async with own_redis_app(app_server, tmp_path, budget=True) as (http, _, redis):
        assert redis.process is not None
        redis.process.send_signal(signal.SIGSTOP)
        try:
            at_once = await asyncio.gather(*(http.get("/graphql", params=params) for params in
                                             [merchant_page(), district_screen(), merchant_page("en")] * 4))
            one_by_one = [await http.get("/graphql", params=params) for params in [merchant_page(), district_screen()]]
            for read in [*at_once, *one_by_one]:
                assert read.status_code == 200 and "errors" not in read.json(), read.text
                assert read.headers.get("x-cache") in (None, "miss"), read.headers  # never from the cache
            assert all(r.json()["data"]["merchant"]["name"] for r in at_once[::3])
        finally:
            redis.process.send_signal(signal.SIGCONT)
