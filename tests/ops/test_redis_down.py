"""Redis stops under the running app: reads go on from MongoDB, writes that need Redis say 503, and live
crowd subscriptions keep their sockets and get updates again once the same Redis is back."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from server.domain.crowd import sensors
from server.settings import ROOT
from tests.conftest import RunningApp, unique_db
from tests.ops.live import next_update, occupancy, open_subscription
from tests.ops.servers import RedisServer, eventually, serve
from tests.support import PASSWORD, make_account

DISTRICT, AREA = "huaqiangbei", "hqb-north"  # tests/fixtures/content
READ = '{ district(id: "%s") { id name crowd { level } areas { id name } } }' % to_global("District", DISTRICT)
UNSUBSCRIBE = 'mutation { unsubscribePush(endpoint: "https://push.example.com/x") { removed } }'


async def post_reading(http: httpx.AsyncClient, key: str, count: int) -> httpx.Response:
    reading = {"areaId": AREA, "at": datetime.now(UTC).isoformat(), "count": count}
    return await http.post("/ingest/crowd", json={"readings": [reading]}, headers={"authorization": f"Bearer {key}"})


async def test_redis_down_then_back(app_server: RunningApp, db_client: Any, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shangquan.crowd")
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = replace(app_server.settings, redis_url=redis.url, mongodb_db=unique_db("redis_down"),
                       var_dir=tmp_path, content_dir=ROOT / "tests" / "fixtures" / "content")
    try:
        async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=15) as http:
            db = db_client[settings.mongodb_db]
            operator = await make_account(db, "operator", district_ids=[DISTRICT])
            _, key = await sensors.register(db, operator.actor(), AREA, "people_counter", "gate")
            assert (await post_reading(http, key, 1000)).status_code == 200
            ws = await open_subscription(url, DISTRICT)
            assert occupancy(await next_update(ws), AREA) == 1000
            assert (await http.get("/readyz")).status_code == 200

            redis.stop()

            ready = await http.get("/readyz")  # degraded, not out of the load balancer: reads still work
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["redis"].startswith("error") and ready.json()["mongodb"] == "ok"
            # reads answer from MongoDB, again and again (the rate limiter lets them through)
            for _ in range(5):
                read = await http.post("/graphql", json={"query": READ})
                assert read.status_code == 200 and "errors" not in read.json(), read.text
                assert read.json()["data"]["district"]["name"] and len(read.json()["data"]["district"]["areas"]) == 2
            limiter_warnings = [r for r in caplog.records if r.name == "shangquan.ratelimit"]
            assert len(limiter_warnings) == 1 and "rate limits are off" in limiter_warnings[0].getMessage()
            # a new subscriber gets the current level from MongoDB too
            late = await open_subscription(url, DISTRICT)
            assert occupancy(await next_update(late), AREA) == 1000
            await late.close()
            # writes that need Redis fail clearly: a sensor batch (nothing is stored; it can be sent again) …
            refused = await post_reading(http, key, 2000)
            assert refused.status_code == 503 and refused.headers["retry-after"].isdigit()
            assert refused.json()["code"] == "SERVICE_UNAVAILABLE"
            assert await db.crowd_readings.find_one({"count": 1000}) is not None
            assert await db.crowd_readings.find_one({"count": 2000}) is None
            # … a GraphQL mutation whose service keeps its rate window in Redis …
            mutation = await http.post("/graphql", json={"query": UNSUBSCRIBE})
            assert mutation.status_code == 503 and mutation.headers["retry-after"].isdigit()
            [error] = mutation.json()["errors"]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert str(redis.port) not in error["message"], "the driver's message stays in the log"
            # … and signing in to the back office (sessions live in Redis)
            form = await http.get("/admin/login")
            csrf = re.search(r'name="csrf" value="([^"]*)"', form.text)
            assert form.status_code == 200 and csrf
            sign_in = await http.post("/admin/login", headers={"accept": "text/html"}, data={
                "csrf": csrf.group(1), "email": operator.email, "password": PASSWORD, "next": "/admin/"})
            assert sign_in.status_code == 503 and "text/html" in sign_in.headers["content-type"]
            # the live socket is still open and answering
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong"}

            redis.start()  # the same port

            async def ready_again() -> bool:
                return (await http.get("/readyz")).json()["status"] == "ready"

            await eventually(ready_again)
            count = 3000

            async def live_again() -> bool:
                # the hub resubscribes within a second or so; until then a published update reaches no one
                nonlocal count
                count += 1
                assert (await post_reading(http, key, count)).status_code == 200
                try:
                    while True:
                        if occupancy(await next_update(ws, wait=1), AREA) == count:
                            return True
                except TimeoutError:
                    return False

            await eventually(live_again)
            hub = [r.getMessage() for r in caplog.records if r.name == "shangquan.crowd"]
            assert sum("lost Redis" in m for m in hub) == 1, "one warning for the outage, not one a second"
            assert any("subscribed to Redis again" in m for m in hub)
            signed_in = await http.post("/admin/login", data={
                "csrf": csrf.group(1), "email": operator.email, "password": PASSWORD, "next": "/admin/"})
            assert signed_in.status_code == 303
            await ws.close()
    finally:
        redis.stop()
