"""Single-machine mode heals itself: each embedded service is killed with SIGKILL under light load (reads, writes,
a live crowd subscription, a push campaign) and comes back on the same data, every client reconnects by itself,
and nothing acknowledged before the kill is lost: an offer edit and a queued campaign for MongoDB, a stream
entry and a back-office session for Redis.  How long recovery takes is measured by bench/self_healing.py."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from server.api.ids import to_global
from server.domain.accounts import service as accounts
from server.domain.crowd import sensors
from server.domain.push import campaign_service as campaigns
from tests.ops.live import next_update, occupancy, open_subscription
from tests.ops.servers import eventually
from tests.push.push_service import PushService, RunningPushService
from tests.push.test_delivery_rules import campaign_input
from tests.push.test_fanout import add_subscribers, per_token
from tests.services.single_machine import SingleMachine, alive
from tests.support import PASSWORD, make_account

DISTRICT, AREA, SHOP = "huaqiangbei", "hqb-north", "hqb-phone-city"  # tests/fixtures/content
READ = '{ district(id: "%s") { id name areas { id name } } }' % to_global("District", DISTRICT)
CREATE = """mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) {
  offer { id slug } errors { code } } }"""
UPDATE = """mutation($id: ID!, $v: Int!, $i: OfferInput!) { updateOffer(id: $id, version: $v, input: $i) {
  offer { version title } errors { code } } }"""


def offer(title: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"title": {"zhCN": title, "en": "Case offer"}, "kind": "GIFT", "validFrom": now.isoformat(),
            "validUntil": (now + timedelta(days=5)).isoformat()}


class Load:
    """Light read load in the background: a GraphQL read every 50 ms, every status kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: list[int] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=15) as http:
            while True:
                try:
                    self.statuses.append((await http.post("/graphql", json={"query": READ})).status_code)
                except httpx.TransportError:
                    self.statuses.append(0)
                await asyncio.sleep(0.05)

    def __enter__(self) -> Load:
        self.task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    running = RunningPushService()
    service = await running.start()
    yield service
    await running.stop()


async def ready(app: SingleMachine, http: httpx.AsyncClient) -> bool:
    assert app.process is not None and app.process.poll() is None, app.log()[-3000:]
    return bool((await http.get("/readyz")).json()["status"] == "ready")


async def sign_in(http: httpx.AsyncClient, email: str) -> None:
    form = await http.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]*)"', form.text)
    assert csrf, form.text
    signed_in = await http.post("/admin/login", data={"csrf": csrf.group(1), "email": email,
                                                      "password": PASSWORD, "next": "/admin/"})
    assert signed_in.status_code == 303, signed_in.text


async def test_each_embedded_service_killed_under_load_comes_back_with_everything_acknowledged(
        tmp_path: Path, push_service: PushService) -> None:
    app = SingleMachine(tmp_path / "var", ALLOW_LOCAL_PUSH_SERVICES="1", PUSH_QUIET_HOURS="", PUSH_DAILY_CAP="0",
                        PUSH_RECLAIM_SECONDS="3")  # a batch the lost Redis held is taken over soon
    app.start()
    mongo: AsyncMongoClient[Any] | None = None
    redis: Redis | None = None
    try:
        async with httpx.AsyncClient(base_url=app.url, timeout=15) as http:
            await eventually(lambda: ready(app, http), within=120)
            lock = app.lock()
            mongo = AsyncMongoClient(lock["mongodb_url"], tz_aware=True)
            redis = Redis.from_url(lock["redis_url"], decode_responses=True)
            db = mongo["shangquan"]
            operator = await make_account(db, "operator", district_ids=[DISTRICT])
            merchant = await make_account(db, "merchant", merchant_ids=[SHOP])
            token = await accounts.create_token(db, merchant.actor(), "pos", ["offers"])
            pos = {"authorization": f"Bearer {token.secret}"}
            _, key = await sensors.register(db, operator.actor(), AREA, "people_counter", "gate")

            async def reading(count: int) -> int:
                batch = {"readings": [{"areaId": AREA, "at": datetime.now(UTC).isoformat(), "count": count}]}
                answer = await http.post("/ingest/crowd", json=batch, headers={"authorization": f"Bearer {key}"})
                return answer.status_code

            assert await reading(100) == 200
            ws = await open_subscription(app.url, DISTRICT)
            assert occupancy(await next_update(ws), AREA) == 100
            count = 100

            async def live_again() -> bool:
                # a reading posted now reaches the open subscription (the hub resubscribed by itself)
                nonlocal count
                count += 1
                if await reading(count) != 200:
                    return False
                try:
                    while True:
                        if occupancy(await next_update(ws, wait=1), AREA) == count:
                            return True
                except TimeoutError:
                    return False

            with Load(app.url) as load:
                # ---- Redis: a back-office session and a stream entry, acknowledged; a campaign under way
                staff = httpx.AsyncClient(base_url=app.url, timeout=15)
                await sign_in(staff, operator.email)
                assert (await staff.get("/admin/")).status_code == 200
                entry = await redis.xadd("acknowledged", {"what": "written before the kill"})
                tokens = await add_subscribers(db, push_service, 1000)
                first = await campaigns.create(db, operator.actor(), campaign_input(), now=datetime.now(UTC))
                await eventually(lambda: _some(push_service), within=60)
                before = len(load.statuses)

                os.kill(app.child_pid("redis"), signal.SIGKILL)

                await eventually(lambda: ready(app, http), within=60)
                assert await redis.xrange("acknowledged") == [(entry, {"what": "written before the kill"})]
                assert (await staff.get("/admin/")).status_code == 200, "the session outlived the restart"
                await staff.aclose()
                await eventually(live_again, within=30)
                await eventually(lambda: _finished(db, first.id), within=120)
                assert set(per_token(push_service)) == set(tokens), "nobody lost"
                # reads never needed Redis: none failed while it was away
                assert set(load.statuses[before:]) == {200}, load.statuses[before:]

                # ---- MongoDB: an offer edit and a queued campaign, acknowledged
                created = (await http.post("/graphql", headers=pos, json={"query": CREATE, "variables": {
                    "m": to_global("Merchant", SHOP), "i": offer("编辑前")}})).json()["data"]["createOffer"]
                offer_id = created["offer"]["id"]
                edited = (await http.post("/graphql", headers=pos, json={"query": UPDATE, "variables": {
                    "id": offer_id, "v": 1, "i": offer("编辑后")}})).json()["data"]["updateOffer"]
                assert edited == {"offer": {"version": 2, "title": "编辑后"}, "errors": []}
                push_service.received.clear()
                queued = await campaigns.create(db, operator.actor(), campaign_input(
                    send_at=datetime.now(UTC) + timedelta(seconds=2)), now=datetime.now(UTC))

                os.kill(app.child_pid("nx-27017"), signal.SIGKILL)

                await eventually(lambda: ready(app, http), within=60)
                stored = await db.offers.find_one({"_id": created["offer"]["slug"]})
                assert stored is not None and (stored["version"], stored["title"]["zh-CN"]) == (2, "编辑后")
                await eventually(live_again, within=30)
                await eventually(lambda: _finished(db, queued.id), within=120)
                assert set(per_token(push_service)) == set(tokens), "the queued campaign reached everyone"
                assert load.statuses[-1] == 200
            await ws.close()
        # the outages were told calmly: one warning each, and one line when back
        lines = [line["message"] for line in app.lines() if line.get("logger") == "shangquan.outage"]
        assert sum(m.startswith("lost Redis") for m in lines) == 1, lines
        assert sum(m.startswith("Redis is back") for m in lines) == 1, lines
        assert sum(m.startswith("lost MongoDB") for m in lines) <= 1, lines
        assert not any("retrying in 1 s" in line for line in app.log().splitlines()), "no line a second"
        children = [app.child_pid("redis"), app.child_pid("nx-27017")]
        assert app.stop() == 0
        assert not any(alive(pid) for pid in children)
    finally:
        if redis is not None:
            await redis.aclose()
        if mongo is not None:
            await mongo.close()
        app.stop(signal.SIGKILL)


async def _some(service: PushService) -> bool:
    return len(service.received) > 0


async def _finished(db: Any, campaign_id: str) -> bool:
    stored = await campaigns.get(db, campaign_id)
    return stored is not None and stored.finished()
