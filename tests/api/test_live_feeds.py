"""Live subscriptions at scale, over real WebSockets against the real app: one execution per distinct
subscription, shared first frames, bounded send queues, refusals that keep nothing, socket limits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.api.ids import to_global
from server.api.live.protocol import UVICORN_WS
from server.asgi import create_app
from server.domain.crowd import sensors
from server.domain.crowd.live import DistrictUpdate, publish
from server.domain.crowd.models import Crowd
from server.domain.inbox import service as inbox
from server.domain.push import campaign_service
from server.domain.push.campaign import CampaignInput
from server.services.embedded import free_port
from server.settings import ROOT
from tests.conftest import CommandCounter, RunningApp, gql
from tests.support import make_account

WAIT = 20  # seconds before a test gives up on a frame it is owed (a hang guard, not a measurement)
CROWD = """subscription($d: ID!) { crowdUpdates(districtId: $d) { districtId
  areas { areaId crowd { occupancy level } } } }"""
CHEAP = "subscription ($d: ID!) { crowdUpdates(districtId: $d) { districtId } }"
INBOX = """query ($d: [ID!]!) { inbox(districts: $d, topics: [OFFERS], locale: "en", first: 5) {
  edges { cursor node { id } } } }"""
INBOX_ITEMS = """subscription ($d: [ID!]!, $newerThan: String) {
  inboxItems(districts: $d, topics: [OFFERS], locale: "en", newerThan: $newerThan) { id title } }"""


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def settle(name: str, value: float) -> None:
    """Wait until a gauge reaches `value` (the server notices closed sockets asynchronously)."""
    async with asyncio.timeout(WAIT):
        while metric(name) != value:
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def app_with(app_server: RunningApp, **changes: Any) -> AsyncIterator[str]:
    """Another web app on the same database and Redis, with some settings changed."""
    app = create_app(replace(app_server.settings, **changes), load_content_on_start=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=2, **UVICORN_WS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await task


async def open_socket(base: str, *, locale: str | None = None, small_buffer: bool = False,
                      init: bool = True) -> ClientConnection:
    """Connected and acknowledged. `small_buffer`: a client that reads nothing it is not asked to (one message
    queued, a 4 KB receive buffer), so that not reading soon stops the server's writes."""
    url = base.replace("http://", "ws://") + "/graphql"
    sock = None
    if small_buffer:
        host, port = base.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.setblocking(False)
    ws = await connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                       additional_headers={"accept-language": locale} if locale else None, sock=sock,
                       max_queue=1 if small_buffer else 16, open_timeout=WAIT, close_timeout=2, max_size=None,
                       compression=None)  # uncompressed, a stalled client's buffers fill after a few frames
    if init:
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert ack["type"] == "connection_ack", ack
    return ws


async def subscribe(ws: ClientConnection, op: str, query: str, variables: dict[str, Any]) -> None:
    await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables}}))


async def frame(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def closed_with(ws: ClientConnection) -> int | None:
    """Read until the server closes the socket; its close code."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    return ws.close_code


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def db(app_server: RunningApp, db_client: Any) -> Any:
    return db_client[app_server.db_name]


async def test_one_execution_per_distinct_subscription(app_server: RunningApp, db: Any) -> None:
    district, area = "shuibei-jewellery", "shuibei-tianbei"
    operator = await make_account(db, "operator", district_ids=[district])
    _, key = await sensors.register(db, operator.actor(), area, "camera", "gate")
    feeds, events, frames = (metric("shangquan_live_feeds"), metric("shangquan_live_events_total"),
                             metric("shangquan_live_frames_total"))
    variables = {"d": to_global("District", district)}
    zh = [await open_socket(app_server.url) for _ in range(10)]
    en = [await open_socket(app_server.url, locale="en") for _ in range(3)]
    try:
        for index, ws in enumerate([*zh, *en]):
            await subscribe(ws, f"s{index}", CROWD, variables)
        first = [await frame(ws) for ws in [*zh, *en]]
        assert {f["type"] for f in first} == {"next"} and [f["id"] for f in first] == [f"s{i}" for i in range(13)]
        assert metric("shangquan_live_feeds") == feeds + 2  # two locales: two feeds for thirteen subscribers
        reading = {"readings": [{"areaId": area, "at": datetime.now(UTC).isoformat(), "count": 777}]}
        async with httpx.AsyncClient(base_url=app_server.url) as http:
            posted = await http.post("/ingest/crowd", json=reading, headers={"authorization": f"Bearer {key}"})
        assert posted.status_code == 200, posted.text
        raw = [await asyncio.wait_for(ws.recv(), WAIT) for ws in [*zh, *en]]
        updates = [json.loads(r) for r in raw]
        for update in updates:
            areas = {a["areaId"]: a["crowd"] for a in update["payload"]["data"]["crowdUpdates"]["areas"]}
            assert areas[to_global("Area", area)]["occupancy"] == 777
        # the same payload text for every subscriber of a feed, only the id differs
        payloads = {str(r).split(',"type":"next","payload":', 1)[1] for r in raw[:10]}
        assert len(payloads) == 1 and updates[10]["payload"]["extensions"] == {"locale": "en"}
        # executed once per feed and event (first frame, the update), sent once per subscriber and event
        assert metric("shangquan_live_events_total") - events == 4
        assert metric("shangquan_live_frames_total") - frames == 26
    finally:
        for ws in [*zh, *en]:
            await ws.close()
    await settle("shangquan_live_feeds", feeds)  # the last subscriber gone, the feed stops


async def test_every_subscriber_of_a_feed_gets_its_own_id_at_every_frame_size(
        app_server: RunningApp, redis: Redis) -> None:
    # The fan-out writes frames' bytes built once per distinct id: ids the same on two sockets, non-ASCII, long
    # enough to move a small frame past the 126-byte length class; the big update is past 65,535 bytes.
    district = "dalang-fashion-town"
    variables = {"d": to_global("District", district)}
    ids = ["1", "1", "2", "订阅-🙂", "x" * 200]
    sockets = [await open_socket(app_server.url) for _ in ids]
    try:
        for ws, op in zip(sockets, ids, strict=True):
            await subscribe(ws, op, CHEAP, variables)
            await subscribe(ws, op + "-all", CROWD, variables)
        for ws in sockets:  # the first frames, from the feeds' first executions
            assert {(await frame(ws))["type"] for _ in range(2)} == {"next"}
        await publish(redis, big_update(district, 4242), datetime.now(UTC))
        for ws, op in zip(sockets, ids, strict=True):
            got = {(f := await frame(ws))["id"]: f for _ in range(2)}
            assert set(got) == {op, op + "-all"} and {f["type"] for f in got.values()} == {"next"}
            assert got[op]["payload"]["data"]["crowdUpdates"]["districtId"] == variables["d"]
            assert marker_of(got[op + "-all"]) == 4242
    finally:
        for ws in sockets:
            await ws.close()


async def test_one_socket_with_two_ids_in_one_feed_gets_each_and_loses_only_the_completed_one(
        app_server: RunningApp, redis: Redis) -> None:
    # A feed's subscribers are grouped by id, then by socket: two ids of one socket sit in two groups, and
    # completing one leaves the other (and the feed) in place.
    district = "prince-bay"
    variables = {"d": to_global("District", district)}
    feeds = metric("shangquan_live_feeds")
    ws, other = await open_socket(app_server.url), await open_socket(app_server.url)
    try:
        for socket_, op in ((ws, "a"), (ws, "b"), (other, "a")):
            await subscribe(socket_, op, CHEAP, variables)
        assert sorted([(await frame(ws))["id"] for _ in range(2)]) == ["a", "b"]
        assert (await frame(other))["id"] == "a"
        assert metric("shangquan_live_feeds") == feeds + 1
        await publish(redis, small_update(district, 1), datetime.now(UTC))
        assert sorted([(await frame(ws))["id"] for _ in range(2)]) == ["a", "b"]
        assert (await frame(other))["id"] == "a"
        await ws.send(json.dumps({"id": "a", "type": "complete"}))
        await publish(redis, small_update(district, 2), datetime.now(UTC))
        assert (await frame(other))["id"] == "a"
        assert (await frame(ws))["id"] == "b"  # only the id still subscribed
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)
        assert metric("shangquan_live_feeds") == feeds + 1
    finally:
        await ws.close()
        await other.close()
    await settle("shangquan_live_feeds", feeds)


async def test_a_reconnect_storm_costs_the_mongodb_reads_of_one_subscriber(
        app_server: RunningApp, command_counter: CommandCounter) -> None:
    async def cost(district: str, clients: int) -> list[str]:
        command_counter.commands.clear()
        command_counter.enabled = True
        sockets = await asyncio.gather(*(open_socket(app_server.url) for _ in range(clients)))
        try:
            for ws in sockets:
                await subscribe(ws, "1", CROWD, {"d": to_global("District", district)})
            for ws in sockets:
                assert (await frame(ws))["type"] == "next"
            return list(command_counter.commands)
        finally:
            command_counter.enabled = False
            for ws in sockets:
                await ws.close()

    one = await cost("yantian-chung-ying-street", 1)
    storm = await cost("shajing-old-market", 40)
    assert one and sorted(storm) == sorted(one)


async def test_bad_subscriptions_get_an_error_frame_and_keep_nothing(app_server: RunningApp) -> None:
    feeds, subscriptions = metric("shangquan_live_feeds"), metric("shangquan_live_subscriptions")
    async with app_with(app_server, max_cost=10) as base:
        ws = await open_socket(base)
        try:
            cases = [("unknown", CHEAP, {"d": to_global("District", "atlantis")}, "NOT_FOUND"),
                     ("malformed", CHEAP, {"d": "not-an-id"}, "INVALID_ID"),
                     ("costly", CROWD, {"d": to_global("District", "huaqiangbei")}, "QUERY_TOO_COSTLY"),
                     ("invalid", "subscription { crowdUpdates { nope } }", {}, "GRAPHQL_VALIDATION_FAILED"),
                     ("unparsable", "subscription {", {}, "GRAPHQL_PARSE_FAILED")]
            for op, query, variables, code in cases:
                await subscribe(ws, op, query, variables)
                refused = await frame(ws)
                assert refused["type"] == "error" and refused["id"] == op, refused
                assert {e["extensions"]["code"] for e in refused["payload"]} == {code}, refused
                assert metric("shangquan_live_feeds") == feeds
                assert metric("shangquan_live_subscriptions") == subscriptions
            # the socket is still good, and an id refused before can be used again
            await subscribe(ws, "unknown", CHEAP, {"d": to_global("District", "huaqiangbei")})
            assert (await frame(ws))["type"] == "next"
        finally:
            await ws.close()
    await settle("shangquan_live_feeds", feeds)


async def test_sockets_that_do_not_subscribe_are_closed_after_the_init_timeout(app_server: RunningApp) -> None:
    async with app_with(app_server, ws_init_timeout_seconds=0.5) as base:
        silent = await open_socket(base, init=False)
        idle = await open_socket(base)  # acknowledged, never subscribes
        assert await closed_with(silent) == 4408
        assert await closed_with(idle) == 4408
        working = await open_socket(base)
        await subscribe(working, "1", CROWD, {"d": to_global("District", "futian-cbd")})
        assert (await frame(working))["type"] == "next"
        await working.close()


async def test_open_sockets_per_address_are_capped(app_server: RunningApp) -> None:
    async with app_with(app_server, ws_max_per_address=2) as base:
        first, second = await open_socket(base), await open_socket(base)
        third = await open_socket(base, init=False)
        assert await closed_with(third) == 1008 and third.close_reason == "Too many open sockets from this address"
        await first.close()
        async with asyncio.timeout(WAIT):  # the server frees the place once it has seen the close
            while True:
                retry = await open_socket(base, init=False)
                await retry.send(json.dumps({"type": "connection_init"}))
                with contextlib.suppress(ConnectionClosed):
                    if json.loads(await retry.recv())["type"] == "connection_ack":
                        break
        await retry.close()
        await second.close()


def big_update(district: str, marker: int) -> DistrictUpdate:
    """A district update with 300 long-named areas (~100 KB a frame), so that a client that stops reading soon
    fills the kernel's buffers and the server's writes to it stop, after few executions."""
    now = datetime.now(UTC)
    crowd = Crowd(marker, 100_000, 1.0, "QUIET", now, "camera", 0.5, False, 1)
    return DistrictUpdate(district, crowd, {f"{district}-area-{i:03}-{'x' * 200}": crowd for i in range(300)})


def marker_of(message: dict[str, Any]) -> int:
    return int(message["payload"]["data"]["crowdUpdates"]["areas"][0]["crowd"]["occupancy"])


async def test_a_client_that_stops_reading_is_closed_and_holds_nobody_back(
        app_server: RunningApp, redis: Redis) -> None:
    district = "luohu-golden-triangle"
    variables = {"d": to_global("District", district)}
    async with app_with(app_server, live_slow_close_seconds=1, live_state_interval_ms=0) as base:
        fast, slow = await open_socket(base), await open_socket(base, small_buffer=True)
        await subscribe(fast, "f", CROWD, variables)
        await subscribe(slow, "s", CROWD, variables)
        assert (await frame(fast))["type"] == "next"
        assert (await frame(slow))["type"] == "next"
        closes = metric("shangquan_live_slow_closes_total")
        published = 0
        while metric("shangquan_live_slow_closes_total") == closes:  # the slow one reads nothing meanwhile
            published += 1
            assert published < 5000, "the server never gave up on the client that stopped reading"
            await publish(redis, big_update(district, published), datetime.now(UTC))
            # the fast client gets every update, in order, while the slow one is stuck
            assert marker_of(await frame(fast)) == published
        got = 0
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(WAIT):
                while True:
                    json.loads(await slow.recv())
                    got += 1
        assert slow.close_code == 4008, (slow.close_code, slow.close_reason)
        assert got < published
        await fast.close()


async def test_a_slow_client_skips_to_the_newest_state(app_server: RunningApp, redis: Redis) -> None:
    district = "prince-bay"
    async with app_with(app_server, live_slow_close_seconds=600, live_state_interval_ms=0) as base:
        fast, slow = await open_socket(base), await open_socket(base, small_buffer=True)
        for ws, op in ((fast, "f"), (slow, "s")):
            await subscribe(ws, op, CROWD, {"d": to_global("District", district)})
            assert (await frame(ws))["type"] == "next"
        superseded = metric("shangquan_live_frames_superseded_total")
        published = 0
        while metric("shangquan_live_frames_superseded_total") < superseded + 5:
            published += 1
            assert published < 5000, "no frame was ever superseded for the client that stopped reading"
            await publish(redis, big_update(district, published), datetime.now(UTC))
            assert marker_of(await frame(fast)) == published
        markers = []
        while not markers or markers[-1] != published:  # it reads again: what is left ends with the newest
            message = await frame(slow)
            assert message["type"] == "next"
            markers.append(marker_of(message))
        assert markers == sorted(markers) and len(markers) < published
        await fast.close()
        await slow.close()


def small_update(district: str, marker: int) -> DistrictUpdate:
    crowd = Crowd(marker, 100_000, 1.0, "QUIET", datetime.now(UTC), "camera", 0.5, False, 1)
    return DistrictUpdate(district, crowd, {f"{district}-area": crowd})


async def test_a_burst_of_state_updates_is_coalesced_to_the_newest(app_server: RunningApp, redis: Redis) -> None:
    """A state feed rests between frames; what arrives meanwhile goes out as one frame, the newest state."""
    district = "shajing-old-market"
    # A long interval, so that the burst below surely lands while the feed rests (it is sent in one round trip).
    async with app_with(app_server, live_state_interval_ms=3000) as base:
        ws = await open_socket(base)
        await subscribe(ws, "1", CROWD, {"d": to_global("District", district)})
        assert (await frame(ws))["type"] == "next"  # the current level (the feed rests after it, too)
        events = metric("shangquan_live_events_total")
        await publish(redis, small_update(district, 1), datetime.now(UTC))
        assert marker_of(await frame(ws)) == 1
        async with redis.pipeline(transaction=False) as burst:
            for marker in range(2, 11):
                await publish(burst, small_update(district, marker), datetime.now(UTC))
            await burst.execute()
        assert marker_of(await frame(ws)) == 10  # 2 … 9 were superseded before they were executed
        assert metric("shangquan_live_events_total") == events + 2
        await publish(redis, small_update(district, 11), datetime.now(UTC))
        assert marker_of(await frame(ws)) == 11  # a client that keeps reading always gets the newest state
        await ws.close()


def new_input() -> CampaignInput:
    tag = uuid.uuid4().hex[:6]
    return CampaignInput(title={"zh-CN": f"夜市 {tag}", "en": f"Night market {tag}"}, body={"zh-CN": "今晚"},
                         url={"zh-CN": "/festivals"}, district_ids=["shuibei-jewellery"], topics=["offers"])


async def test_an_item_sent_between_the_inbox_query_and_the_subscription_arrives_once(
        app_server: RunningApp, db: Any, redis: Redis, http: httpx.AsyncClient) -> None:
    admin = (await make_account(db, "admin")).actor()
    districts = [to_global("District", "shuibei-jewellery")]
    before = await campaign_service.create(db, admin, new_input(), now=datetime.now(UTC))
    await inbox.announce(redis, before.id)
    page = (await gql(http, INBOX, {"d": districts}))["data"]["inbox"]["edges"]
    assert page[0]["node"]["id"] == to_global("Campaign", before.id)
    between = await campaign_service.create(db, admin, new_input(), now=datetime.now(UTC))
    await inbox.announce(redis, between.id)  # after the query, before the subscription
    ws = await open_socket(app_server.url)
    try:
        await subscribe(ws, "1", INBOX_ITEMS, {"d": districts, "newerThan": page[0]["cursor"]})
        await inbox.announce(redis, between.id)  # announced again while subscribed: still shown once
        after = await campaign_service.create(db, admin, new_input(), now=datetime.now(UTC))
        await inbox.announce(redis, after.id)
        ids = [(await frame(ws))["payload"]["data"]["inboxItems"]["id"] for _ in range(2)]
        assert ids == [to_global("Campaign", between.id), to_global("Campaign", after.id)]
    finally:
        await ws.close()


# Where the server side of a socket allocates: what the test's own clients hold is left out.
SERVER_CODE = ("*/uvicorn/*", "*/starlette/*", "*/strawberry/*", f"{ROOT}/server/*")


def server_bytes(snapshot: tracemalloc.Snapshot) -> int:
    kept = snapshot.filter_traces([tracemalloc.Filter(True, pattern, all_frames=True) for pattern in SERVER_CODE])
    return sum(stat.size for stat in kept.statistics("filename"))


async def test_an_idle_subscribed_socket_costs_the_server_little_memory(app_server: RunningApp) -> None:
    variables = {"d": to_global("District", "dalang-fashion-town")}

    async def subscribed() -> ClientConnection:
        ws = await open_socket(app_server.url)
        await subscribe(ws, "1", CROWD, variables)
        assert (await frame(ws))["type"] == "next"
        return ws

    sockets = [await subscribed()]  # the feed and what the first socket warms up exist before counting
    added = 50
    tracemalloc.start(16)
    try:
        gc.collect()
        before = server_bytes(tracemalloc.take_snapshot())
        sockets += [await subscribed() for _ in range(added)]
        gc.collect()
        per_socket = (server_bytes(tracemalloc.take_snapshot()) - before) / added
        print(f"server-side Python memory per idle subscribed socket: {per_socket:.0f} bytes")
    finally:
        tracemalloc.stop()
        for ws in sockets:
            await ws.close()
    # ~16 KB of Python objects (bench/live_memory.py breaks them down); eager DataLoaders alone added 11 KB,
    # a writer task, its event and queue 3 KB, uvicorn's stock protocol 7 KB
    assert 2_000 < per_socket < 32_000, per_socket
