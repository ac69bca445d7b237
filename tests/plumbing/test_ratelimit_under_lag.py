"""The rate limiter keeps limiting when a Redis call failed only because this process's event loop was busy.

As in tests/api/test_cache_under_lag.py: Redis holds the call past the limiter's 3 s limit (`CLIENT PAUSE`)
while CPU work in the app's process (this test's event loop) stalls it for part of that time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from server.plumbing.ratelimit import CALL_TIMEOUT
from tests.api.test_cache_under_lag import busy
from tests.conftest import RunningApp, unique_db
from tests.ops.servers import RedisServer, serve

LIMIT = 4
WINDOW = 3600  # one window for the whole test (the limiter counts per wall-clock window)


async def test_a_charge_that_fails_while_the_event_loop_is_busy_leaves_limits_on(app_server: RunningApp,
                                                                                 tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = replace(app_server.settings, mongodb_db=unique_db("lag"), var_dir=tmp_path, redis_url=redis.url,
                       rate_limit_requests=LIMIT, rate_limit_window_seconds=WINDOW)
    admin = aioredis.from_url(redis.url)
    if WINDOW - time.time() % WINDOW < 30:
        await asyncio.sleep(WINDOW - time.time() % WINDOW + 1)
    try:
        async with serve(settings, load_content=False) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.get("/admin/login")).status_code != 429
            await admin.execute_command("CLIENT", "PAUSE", int((CALL_TIMEOUT + 1.5) * 1000), "ALL")
            held = asyncio.create_task(http.get("/admin/login"))
            await asyncio.sleep(0.5)  # the limiter has sent its INCRBY and waits for Redis
            busy(1.5)
            assert (await held).status_code != 429  # let through: the limiter could not count it in time
            # still counting: the budget runs out within a few more requests (a paused limiter lets them all in)
            answers = [(await http.get("/admin/login")).status_code for _ in range(LIMIT + 1)]
            assert 429 in answers, answers
    finally:
        await admin.aclose()
        redis.stop()
