"""Benchmark: a mixed shopper workload against the app served as in production, in one run.

    python bench/load.py [--minutes 10] [--warmup 120] [--rate R | --load 0.7] [--subscribers 50] [--readings 2]
                         [--memory-census [--tracemalloc N]] [--keep]
    python bench/load.py --fault [--minutes 5] [--rate R] [--push-subscribers 2000]

Starts an in-memory nx-27017 and a redis-server, loads content/ into database "bench", creates an
operator with an API token, one sensor per area and a few inbox campaigns, then runs the Procfile's
processes: the web app (`server.asgi:app` under uvicorn, through bench/serve.py asgi) and the worker
(`python -m server.worker`; two with --fault).  The load comes from this process:

* shoppers, by weight: district screen 22 (DistrictScreen), merchant page 30 (MerchantPage), search in
  Chinese 15 (Search), near me 13 (Merchants with `near`, 5 km, from the PWA's grid point), inbox 15 (Inbox, the
  PWA's persisted GET) and subscribe 5: a graphql-transport-ws socket on /graphql with the
  text of CrowdUpdates.graphql, measured until its first message, then held 20-90 s like an open district
  screen.  Reads are persisted-query GETs with a `locale` variable (zh-CN 70 %, zh-HK 15 %, en 15 %);
* `--subscribers` long-lived crowdUpdates subscriptions, spread over the districts, open all run long;
* sensors: `--readings` single readings per second POSTed to /ingest/crowd, round-robin over every area,
  each with its own time, so every subscription of the district should see it (area `updatedAt`).

The shoppers' GETs are prepared as bytes ahead (each kind's requests drawn from the distribution above)
and sent by bench/lean_http.py over at most 256 kept-alive connections, so the generator costs ~0.15 cores
at ~1,400 req/s; every phase 1 step prints the cores busy of the web, nx-27017, Redis, the worker and the
generator, so a reader sees which one saturated.

Before phase 1 each distinct prepared read is asked once (`--warm-concurrency`, 0 to skip): the public
cache fills as in a festival's first minutes, and its cost (time, CPU, web RSS before and after) is
printed on its own. Phase 1 (unless --rate is given) then finds the saturation point: a closed loop of the
shopper mix at rising concurrency, `--step-seconds` each, with each step's hit ratio; the best successful
req/s is the maximum (both loops, the mix's and the static file's, go at least to concurrency 16, and the static
file's at least as far as the mix's, so the two maxima are searched alike).  Phase 2 is an open loop at
`--load` (0.7) of it: arrivals at a fixed rate, latency counted from each arrival's scheduled time (so a
stalled server or load generator shows up as latency, not as fewer requests), `--warmup` s of warm-up and
then `--minutes` measured.  Errors are any non-2xx answer, a GraphQL error, a failed connection or
subscription, and a dropped WebSocket.  The web process's RSS is read from /proc at the end of the
warm-up (long enough for the held subscriptions to reach their steady number) and at the end, with the
growth in each half of the window (a leak grows in both; warm-up does not);
--memory-census also counts its objects by type at both moments (bench/serve.py --memory-out) and
prints the types that grew.  The benchmark acts as a process manager: a worker that exits unasked is
reported and started again.

--fault runs the same workload with two workers and, during phase 2: Redis is stopped (SIGTERM) and
started again on the same port `--redis-down` s later (it keeps no data, as the embedded one: streams and
groups start empty), and later an operator's createCampaign targets `--push-subscribers` subscriptions whose
endpoints are a local push service (bench/push_sink.py, ALLOW_LOCAL_PUSH_SERVICES=1); once a quarter of
them got their message, one worker is killed with SIGKILL (and left dead).  Printed: client errors by kind, how
long requests and subscriptions took to recover from the restart, and push messages lost (a subscription
that got none) and duplicated (one that got more than one).  Exits with status 2 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx
import redis.asyncio as aioredis
import uvloop
from crowd_live import wait_ready  # bench/ is sys.path[0] when run as a script
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from graphql_read import ServerProcess, cpu_seconds, percentile, spawn_server
from lean_http import HttpFailure, LeanClient
from live_clients import Client as LeanSocket

from server.api.ids import from_global, to_global
from server.content.loader import load_content
from server.domain.accounts import service as accounts
from server.domain.crowd import sensors
from server.domain.geo import NEAR_GRID_PER_DEGREE
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service
from server.domain.push.endpoints import b64url, origin_of
from server.domain.push.models import COLLECTION as PUSH_SUBSCRIPTIONS
from server.domain.push.models import PushSubscription, subscription_id
from server.plumbing.persisted import digest
from server.push import fanout
from server.services import embedded, mongo
from server.settings import ROOT

DB_NAME = "bench"
PASSWORD = "bench-password-for-load-2026"
OPERATIONS = ROOT / "graphql" / "operations"
WEIGHTS = {"district": 22, "merchant": 30, "search": 15, "near": 13, "inbox": 15, "subscribe": 5}
SHOPPER_KINDS = tuple(WEIGHTS)
LOCALES = ("zh-CN", "zh-HK", "en")
LOCALE_WEIGHTS = (70, 15, 15)
SEARCHES = ("华强北", "手机", "黄金", "珠宝", "茶叶", "深圳手信", "東門", "电子", "海鲜", "咖啡", "服装",
            "中英街", "华强 手机", "金饰", "水贝", "老街", "茶具", "耳机")
TOPICS = ["FESTIVALS", "OFFERS", "CROWD_ALERTS"]
NEAR_RADIUS_M = 5000
GRID = NEAR_GRID_PER_DEGREE
PAGE = 20
HOLD_SECONDS = (20.0, 90.0)  # how long a district screen (and its subscription) stays open
# Shoppers' phones, each its own address as a load balancer reports it (X-Forwarded-For, trusted from
# 127.0.0.1 by uvicorn): the app's per-client limits then see many clients, as in production.
PHONES = 5000
CAMPAIGN_DISTRICT = "huaqiangbei"
KILL_AT = 0.25  # share of the push subscribers served when one worker is killed
CREATE_CAMPAIGN = """mutation BenchCampaign($input: CampaignInput!) {
  createCampaign(input: $input) { campaign { id status } errors { field code message } }
}"""

Doc = dict[str, Any]
Log = Callable[[str], None]
clock = time.monotonic


# ---------------------------------------------------------------------------- what the shoppers see


@dataclass
class Catalog:
    """Ids and places the shoppers pick from, and the keys of the simulated sensors."""

    districts: list[str]  # raw ids
    merchants: list[str]  # global ids of published merchants
    points: list[tuple[float, float]]  # (lat, lng) of merchants: where "near me" asks from
    area_gid: dict[str, str]
    area_district: dict[str, str]
    area_capacity: dict[str, int]
    sensor_keys: dict[str, str]  # area -> sensor key
    operator_token: str
    hashes: dict[str, str] = field(default_factory=dict)
    shop_token: str = ""  # a merchant's token: the operator edits this shop's offer every 2 s
    shop_offer: Doc = field(default_factory=dict)
    subscription_text: str = ""

    def district_gid(self, district: str) -> str:
        return to_global("District", district)


@dataclass
class Outcome:
    kind: str
    started: float  # scheduled (open loop) or sent (closed loop), monotonic
    ended: float
    ok: bool


class Recorder:
    """Every answer, good or bad, with a few examples of each kind of failure."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, started: float, ok: bool, detail: str = "") -> None:
        self.outcomes.append(Outcome(kind, started, clock(), ok))
        if not ok and len(self.examples[kind]) < 4:
            self.examples[kind].append(f"{detail[:300]}")


# ---------------------------------------------------------------------------- subscriptions


class _Socket(LeanSocket):
    """bench/live_clients.py's lean RFC 6455 client (an asyncio Protocol: no task, queue or wake-up per frame) with
    the phone's X-Forwarded-For; once the subscription is open, each frame goes to `on_text` as it comes."""

    def __init__(self, host: str, path: str, phone: str) -> None:
        # permessage-deflate offered as browsers do (the app declines it: server/api/live/protocol.py)
        super().__init__(host, path, deflate=True, headers={"X-Forwarded-For": phone})
        self.on_text: Callable[[str], None] | None = None
        self.on_lost: Callable[[str], None] | None = None

    def received(self, now: float, compressed: bool, payload: bytes) -> None:
        if self.on_text is None:
            super().received(now, compressed, payload)
        else:
            self.on_text(self.text(compressed, payload))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost(self.ended or "connection lost")


class LiveSubscription:
    """One crowdUpdates subscription as the PWA holds it; remembers every area `updatedAt` it was told.

    On the lean client above: the `websockets` client it used before cost the load generator, on the same two cores
    as the server, more CPU per subscribe than the web process spent on it (three awaited round trips, a reader task
    per socket woken per frame)."""

    def __init__(self, district: str, recorder: Recorder, *, keep_arrivals: bool) -> None:
        self.district = district
        self.recorder = recorder
        self.keep_arrivals = keep_arrivals
        self.socket: _Socket | None = None
        self.opened_at = 0.0
        self.closing = False
        self.dropped = ""
        self.seen: dict[str, set[int]] = defaultdict(set)  # area gid -> updatedAt in epoch ms
        self.arrivals: list[tuple[float, dict[str, int]]] = []

    async def open(self, url: str, text: str, phone: str) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        async with asyncio.timeout(30):
            _, socket = await asyncio.get_running_loop().create_connection(
                lambda: _Socket(f"{host}:{port}", parts.path or "/", phone), host, port)
            self.socket = socket
            await socket.opened
            socket.send_text('{"type":"connection_init","payload":{}}')
            ack = await socket.next_message()
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"expected connection_ack, got {str(ack)[:200]}")
            socket.send_text(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": text, "variables": {"districtId": to_global("District", self.district)}}}))
            first = await socket.next_message()
        if not self._take(first):
            raise RuntimeError(f"expected the current level first, got {str(first)[:300]}")
        self.opened_at = clock()
        socket.on_text, socket.on_lost = self._frame, self._lost

    def _take(self, message: Doc) -> bool:
        """Record a `next` message; False for anything that is not a good one."""
        kind = message.get("type")
        if kind == "ping":
            return True
        if kind != "next" or message.get("payload", {}).get("errors"):
            return False
        areas = message["payload"]["data"]["crowdUpdates"]["areas"]  # a malformed one raises: counted by the caller
        if not self.keep_arrivals:
            return isinstance(areas, list)  # a shopper's screen: only whether it is good counts
        stamps: dict[str, int] = {}
        for area in areas:
            updated = area["crowd"]["updatedAt"]
            if updated:
                stamps[area["areaId"]] = round(datetime.fromisoformat(updated).timestamp() * 1000)
        for area_id, ms in stamps.items():
            self.seen[area_id].add(ms)
        self.arrivals.append((clock(), stamps))
        return True

    def _frame(self, raw: str) -> None:
        if '"ping"' in raw[:40] and self.socket is not None:
            self.socket.send_text('{"type":"pong"}')
            return
        try:
            good = self._take(json.loads(raw))
        except Exception as exc:  # a malformed message is counted, never fatal to the run
            good, raw = False, f"{type(exc).__name__}: {raw}"
        if not good:
            self.recorder.add("subscription", clock(), False, f"{self.district}: {raw[:200]}")

    def _lost(self, reason: str) -> None:
        if not self.closing:
            self.dropped = reason
            self.recorder.add("subscription", clock(), False, f"dropped ({self.district}): {reason}")

    async def close(self) -> None:
        self.closing = True
        socket = self.socket
        if socket is not None and socket.transport is not None and not socket.transport.is_closing():
            with contextlib.suppress(Exception):
                socket.send_text('{"id":"1","type":"complete"}')
            socket.close()


# ---------------------------------------------------------------------------- the load


class Shoppers:
    """Builds and sends one shopper action of a kind; answers go to the recorder."""

    def __init__(self, base_url: str, catalog: Catalog, recorder: Recorder, seed: int,
                 weights: dict[str, int] | None = None) -> None:
        self.catalog = catalog
        self.recorder = recorder
        self.rng = random.Random(seed)
        self.ws_url = base_url.replace("http://", "ws://") + "/graphql"
        # GETs go through a lean keep-alive client with requests prepared as bytes (bench/lean_http.py): with
        # httpx the generator ran out of CPU before the server did
        self.client = LeanClient(base_url)
        self.held: set[LiveSubscription] = set()
        self.hold_tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.cache_answers: Counter[str] = Counter()
        self.cache_by_kind: Counter[tuple[str, str]] = Counter()  # (kind, X-Cache): which reads miss
        self.weights = [(weights or WEIGHTS).get(kind, 0) for kind in SHOPPER_KINDS]
        self.phones = [f"X-Forwarded-For: {self.phone()}\r\n\r\n".encode() for _ in range(PHONES)]
        self.prepared = self._prepare()

    def _prepare(self) -> dict[str, list[bytes]]:
        """Each kind's requests drawn ahead from the same distribution as `request` (near me: many, as its
        points are many), so sending one costs a choice and a concatenation."""
        pools: dict[str, list[bytes]] = {}
        for kind in SHOPPER_KINDS:
            if kind == "subscribe":
                continue
            draws = 20_000 if kind == "near" else 4_096
            pools[kind] = []
            for _ in range(draws):
                _, _, payload = self.request(kind)
                head, _ = self.client.request_bytes(f"/graphql?{urlencode(payload)}")
                pools[kind].append(head)
        return pools

    def pick(self) -> str:
        return self.rng.choices(SHOPPER_KINDS, weights=self.weights)[0]

    def phone(self) -> str:
        n = self.rng.randrange(PHONES)
        return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"

    def _persisted(self, name: str, variables: Doc) -> tuple[str, str]:
        locale = self.rng.choices(LOCALES, weights=LOCALE_WEIGHTS)[0]
        extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": self.catalog.hashes[name]}},
                                separators=(",", ":"))
        return extensions, json.dumps({**variables, "locale": locale}, ensure_ascii=False, separators=(",", ":"))

    def request(self, kind: str) -> tuple[str, str, Doc]:
        """(method, operation, payload) of one shopper read."""
        c, rng = self.catalog, self.rng
        if kind == "district":
            name, variables = "DistrictScreen", {"id": c.district_gid(rng.choice(c.districts))}
        elif kind == "merchant":
            name, variables = "MerchantPage", {"id": rng.choice(c.merchants)}
        elif kind == "search":
            name, variables = "Search", {"query": rng.choice(SEARCHES)}
        elif kind == "near":
            lat, lng = rng.choice(c.points)
            jitter = 0.004  # about 400 m: shoppers stand near shops, not in them
            # and ask from the nearest point of the PWA's grid (pwa/geo.js snap), as the PWA does
            near = {"lat": round((lat + rng.uniform(-jitter, jitter)) * GRID) / GRID,
                    "lng": round((lng + rng.uniform(-jitter, jitter)) * GRID) / GRID, "radiusMeters": NEAR_RADIUS_M}
            name, variables = "Merchants", {"filter": {"near": near}, "first": PAGE}
        else:  # inbox: the PWA's persisted GET (pwa/screens.js checkInbox) for the whole set of districts
            districts = [c.district_gid(d) for d in c.districts]
            name, variables = "Inbox", {"districts": districts, "topics": TOPICS, "first": PAGE}
        extensions, variables_json = self._persisted(name, variables)
        return "GET", name, {"extensions": extensions, "variables": variables_json}

    async def do(self, kind: str, started: float) -> bool:
        if kind == "subscribe":
            return await self.subscribe(started)
        raw = self.rng.choice(self.prepared[kind]) + self.rng.choice(self.phones)
        try:
            answer = await self.client.send(raw)
            ok = answer.status == 200 and b'"errors"' not in answer.body
            detail = "" if ok else f"HTTP {answer.status}: {answer.body[:250]!r}"
            cache = answer.headers.get(b"x-cache", b"not cacheable").decode()
            self.cache_answers[cache] += 1
            self.cache_by_kind[kind, cache] += 1
        except (HttpFailure, TimeoutError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.recorder.add(kind, started, ok, detail)
        return ok

    async def subscribe(self, started: float) -> bool:
        sub = LiveSubscription(self.rng.choice(self.catalog.districts), self.recorder, keep_arrivals=False)
        try:
            await sub.open(self.ws_url, self.catalog.subscription_text, self.phone())
        except Exception as exc:
            self.recorder.add("subscribe", started, False, f"{type(exc).__name__}: {exc}")
            await sub.close()
            return False
        self.recorder.add("subscribe", started, True)
        if self.stopping:
            await sub.close()
            return True
        self.held.add(sub)
        task = asyncio.create_task(self._hold(sub, self.rng.uniform(*HOLD_SECONDS)))
        self.hold_tasks.add(task)
        task.add_done_callback(self.hold_tasks.discard)
        return True

    async def _hold(self, sub: LiveSubscription, seconds: float) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(seconds)
        self.held.discard(sub)
        await sub.close()

    async def aclose(self) -> None:
        self.stopping = True
        for task in list(self.hold_tasks):
            task.cancel()
        await asyncio.gather(*self.hold_tasks, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in list(self.held)), return_exceptions=True)
        self.client.close()


@dataclass
class Reading:
    district: str
    area_gid: str
    at_ms: int
    posted: float  # monotonic, when the POST was sent


class Sensors:
    """Single readings, round-robin over every area, each POST on its own so a slow answer delays nothing."""

    def __init__(self, base_url: str, catalog: Catalog, recorder: Recorder, seed: int) -> None:
        self.catalog = catalog
        self.recorder = recorder
        self.rng = random.Random(seed)
        self.client = httpx.AsyncClient(base_url=base_url, timeout=30, trust_env=False,
                                        limits=httpx.Limits(keepalive_expiry=4.0))
        self.areas = sorted(catalog.sensor_keys)
        self.rng.shuffle(self.areas)
        self.stored: list[Reading] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, rate: float, stop: asyncio.Event) -> None:
        t0, i = clock(), 0
        while not stop.is_set():
            due = t0 + i / rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, due - clock()))
            if stop.is_set():
                break
            task = asyncio.create_task(self.post(self.areas[i % len(self.areas)], due))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            i += 1

    async def post(self, area: str, started: float) -> None:
        now = datetime.now(UTC)
        at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the server keeps milliseconds
        capacity = self.catalog.area_capacity.get(area) or 10_000
        body = {"readings": [{"areaId": area, "at": at.isoformat(timespec="milliseconds"),
                              "count": self.rng.randrange(capacity // 10, capacity)}]}
        sent = clock()
        try:
            response = await self.client.post("/ingest/crowd", json=body,
                                              headers={"authorization": f"Bearer {self.catalog.sensor_keys[area]}"})
            ok = response.status_code == 200 and response.json().get("stored") == [0]
            detail = "" if ok else f"HTTP {response.status_code}: {response.text[:250]}"
        except (httpx.HTTPError, ValueError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.recorder.add("ingest", started, ok, detail)
        if ok:
            self.stored.append(Reading(self.catalog.area_district[area], self.catalog.area_gid[area],
                                       round(at.timestamp() * 1000), sent))

    async def aclose(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()


UPDATE_OFFER = """mutation($id: ID!, $v: Int!, $i: OfferInput!) { updateOffer(id: $id, version: $v, input: $i) {
  offer { version title } errors { field code message } } }"""
STATIC_PATH = "/app/style.css"  # a shell file the same web process serves: the baseline of the mix


class StaticFile:
    """The closed-loop shape of Shoppers for a static file of the same app (phase 1's baseline)."""

    def __init__(self, base_url: str) -> None:
        self.client = LeanClient(base_url)
        head, tail = self.client.request_bytes(STATIC_PATH)
        self.raw = head + tail

    def pick(self) -> str:
        return "static"

    async def do(self, kind: str, started: float) -> bool:
        try:
            return (await self.client.send(self.raw)).status == 200
        except (HttpFailure, TimeoutError):
            return False


@dataclass
class Operator:
    """Edits one offer every `every` s through the API (as the back office would), then reads the shop's page
    as a shopper (a persisted GET, answered from the public cache when nothing changed): a read that does not
    show the acknowledged edit is a stale read."""

    base_url: str
    catalog: Catalog
    every: float = 2.0
    writes: int = 0
    stale: int = 0
    failed: list[str] = field(default_factory=list)

    async def run(self, until: float) -> None:
        offer = self.catalog.shop_offer
        version = int(offer.get("version") or 0)
        gid, shop = to_global("Offer", offer["_id"]), to_global("Merchant", offer["merchant_id"])
        page = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash":
                                                             self.catalog.hashes["MerchantPage"]}}),
                "variables": json.dumps({"id": shop, "locale": "zh-CN"})}
        headers = {"authorization": f"Bearer {self.catalog.shop_token}"}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, trust_env=False) as client:
            while clock() < until:
                next_at = clock() + self.every
                title = f"{offer['title'].get('zh-CN', 'offer')[:60]} #{self.writes + 1}"
                given = {"title": {"zhCN": title}, "kind": str(offer["kind"]).upper(),
                         "percentOff": offer.get("percent_off"), "amountOffFen": offer.get("amount_off_fen"),
                         "minSpendFen": offer.get("min_spend_fen"), "couponCode": offer.get("coupon_code"),
                         "validFrom": offer["valid_from"].replace(tzinfo=UTC).isoformat(),
                         "validUntil": offer["valid_until"].replace(tzinfo=UTC).isoformat(),
                         "stock": offer.get("stock")}
                try:
                    done = (await client.post("/graphql", json={"query": UPDATE_OFFER, "variables": {
                        "id": gid, "v": version, "i": given}}, headers=headers)).json()["data"]["updateOffer"]
                    if done["errors"]:
                        raise RuntimeError(str(done["errors"]))
                    version = done["offer"]["version"]
                    self.writes += 1
                    seen = (await client.get("/graphql", params=page)).json()["data"]["merchant"]["offers"]
                    if title not in [o["title"] for o in seen]:
                        self.stale += 1
                except Exception as exc:  # reported, and the run goes on
                    self.failed.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                await asyncio.sleep(max(0.0, next_at - clock()))


async def cache_memory(redis_url: str) -> tuple[int, float]:
    """(cached answers in Redis now, bytes of Redis memory per 1,000 of them: MEMORY USAGE of each entry)."""
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"sq:pc:{DB_NAME}:e:*", count=1000)]
        if not keys:
            return 0, 0.0
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.memory_usage(key)
            sizes = [int(x or 0) for x in await pipe.execute()]
        return len(keys), sum(sizes) / len(sizes) * 1000
    finally:
        await client.aclose()


@dataclass
class Step:
    concurrency: int
    seconds: float
    ok: int
    errors: int
    latencies: list[float]
    cpu: dict[str, float] = field(default_factory=dict)  # cores busy during the measured seconds, by process
    hit_ratio: float | None = None  # X-Cache hits of the cacheable GETs answered in the measured seconds

    @property
    def rps(self) -> float:
        return self.ok / self.seconds


class Actions(Protocol):
    def pick(self) -> str: ...

    async def do(self, kind: str, started: float) -> bool: ...


def busy(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each process (gone ones left out)."""
    found = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            found[name] = cpu_seconds(pid)
    return found


def hits(step: Step) -> str:
    return "" if step.hit_ratio is None else f"  hit ratio {step.hit_ratio:.3f}"


def cores(busy_by_name: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in busy_by_name.items())


def web_cost(step: Step) -> str:
    """The web process's CPU per successful request: comparable between steps whatever share of a core it got."""
    web = step.cpu.get("web")
    return f"; web {web / step.rps * 1000:.3f} ms/req" if web and step.rps else ""


async def closed_step(shoppers: Actions, concurrency: int, warmup: float, seconds: float,
                      pids: dict[str, int] | None = None) -> Step:
    begin = clock() + warmup
    end = begin + seconds
    step = Step(concurrency, seconds, 0, 0, [])

    async def measure_cpu() -> None:
        # which process was busy: the web's 1.00 means the server saturated, the generator's the load's limit
        answers: Counter[str] | None = getattr(shoppers, "cache_answers", None)
        await asyncio.sleep(max(0.0, begin - clock()))
        first, answers_then = busy(pids or {}), Counter(answers or {})
        await asyncio.sleep(max(0.0, end - clock()))
        last = busy(pids or {})
        step.cpu = {k: (last[k] - first[k]) / seconds for k in first if k in last}
        if answers is not None:
            seen = Counter(answers)
            seen.subtract(answers_then)
            if seen["hit"] + seen["miss"]:
                step.hit_ratio = seen["hit"] / (seen["hit"] + seen["miss"])

    meter = asyncio.create_task(measure_cpu())

    async def user() -> None:
        while clock() < end:
            started = clock()
            ok = await shoppers.do(shoppers.pick(), started)
            finished = clock()
            if begin <= finished < end:
                if ok:
                    step.ok += 1
                    step.latencies.append(finished - started)
                else:
                    step.errors += 1

    await asyncio.gather(*(user() for _ in range(concurrency)))
    await meter
    return step


# Both closed loops run at least up to this concurrency (and the static file's at least as far as the mix's), so the
# two maxima are searched alike.
SCAN_AT_LEAST = 16


async def saturate(shoppers: Actions, levels: Sequence[int], warmup: float, seconds: float, log: Log,
                   pids: dict[str, int] | None = None, at_least: int = 0) -> list[Step]:
    """Raise the concurrency until the throughput stops growing (two steps under +5 % of the best), but not before
    `at_least`: the static file's curve rises slowly (2,527 req/s at 1, 2,510 at 2, 2,638 at 4, ~3,000 at 16), so
    stopping it where it first looks flat understated it and flattered the mix's ratio."""
    steps: list[Step] = []
    flat = 0
    for concurrency in levels:
        step = await closed_step(shoppers, concurrency, warmup, seconds, pids)
        lat = sorted(step.latencies)
        log(f"  concurrency {concurrency:3d}: {step.rps:7.1f} req/s, p50 {percentile(lat, 50) * 1000:7.1f} ms, "
            f"p99 {percentile(lat, 99) * 1000:7.1f} ms, {step.errors} errors{hits(step)}; "
            f"cores busy: {cores(step.cpu)}{web_cost(step)}")
        best = max((s.rps for s in steps), default=0.0)
        steps.append(step)
        flat = flat + 1 if step.rps < best * 1.05 else 0
        if (flat >= 2 and concurrency >= at_least) or (lat and percentile(lat, 50) > 2.0):
            break
    return steps


async def cost_per_kind(shoppers: Shoppers, base_url: str, concurrency: int, seconds: float,
                        pids: dict[str, int], log: Log) -> None:
    """One closed step of each shopper kind alone, then of the static file: the web's CPU per request of each."""
    log(f"cost per kind: each kind alone, concurrency {concurrency}, {seconds:g} s")
    mix = shoppers.weights
    static = StaticFile(base_url)
    try:
        for kind in (*SHOPPER_KINDS, "static"):
            shoppers.weights = [int(k == kind) for k in SHOPPER_KINDS]
            step = await closed_step(static if kind == "static" else shoppers, concurrency, 3.0, seconds, pids)
            log(f"  {kind:<10} {step.rps:7.1f} req/s{hits(step)}; cores busy: {cores(step.cpu)}{web_cost(step)}")
    finally:
        shoppers.weights = mix
        static.client.close()


@dataclass
class Warming:
    requests: int = 0
    seconds: float = 0.0
    misses: int = 0
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    rss_kb: tuple[int, int] = (0, 0)  # web RSS before and after


async def warm_cache(shoppers: Shoppers, concurrency: int, pids: dict[str, int], web_pid: int) -> Warming:
    """Ask each distinct prepared read once, as the first minutes of a festival's shoppers would: the public
    cache fills (and the web process's bounded memos with it), so phase 1 measures the steady state, not
    a cold start. What it cost is reported on its own."""
    todo = [head for pool in shoppers.prepared.values() for head in dict.fromkeys(pool)]
    shoppers.rng.shuffle(todo)
    warming = Warming(len(todo), rss_kb=(rss_kb(web_pid), 0))
    before, began = busy(pids), clock()
    answers: Counter[str] = Counter()

    async def worker() -> None:
        while todo:
            raw = todo.pop() + shoppers.rng.choice(shoppers.phones)
            try:
                answer = await shoppers.client.send(raw)
                answers[answer.headers.get(b"x-cache", b"-").decode()] += 1
                if answer.status != 200:
                    warming.errors += 1
            except (HttpFailure, TimeoutError):
                warming.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    warming.seconds = clock() - began
    after = busy(pids)
    warming.cpu = {k: after[k] - before[k] for k in before if k in after}
    warming.misses = answers["miss"]
    warming.rss_kb = (warming.rss_kb[0], rss_kb(web_pid))
    return warming


async def open_loop(shoppers: Shoppers, rate: float, seconds: float) -> list[float]:
    """Arrivals every 1/rate s for `seconds`, each its own task; returns how late each one was started."""
    t0 = clock()
    lags: list[float] = []
    tasks: set[asyncio.Task[bool]] = set()
    i = 0
    while True:
        due = t0 + i / rate
        if due >= t0 + seconds:
            break
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(clock() - due)
        task = asyncio.create_task(shoppers.do(shoppers.pick(), due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    if tasks:
        # Arrivals the server has not answered a minute after the last one was due: the requests still queued for
        # a connection fail now, each counted as an error (the client's close fails them in one pass), and those
        # on the wire end by their 30 s timeout, so the report is always printed.
        shoppers.client.close()
        await asyncio.wait(tasks, timeout=40)
    return lags


# ---------------------------------------------------------------------------- processes


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def spawn_worker(env: dict[str, str], var_dir: Path, index: int) -> ServerProcess:
    """`python -m server.worker` as the Procfile runs it; its output goes to a file, never to our pipes."""
    log = var_dir / f"worker-{index}.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "server.worker"], stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=str(var_dir), start_new_session=True)
    return ServerProcess(f"worker {index}", "", process, log)


async def wait_worker(worker: ServerProcess, within_s: float = 60) -> None:
    deadline = clock() + within_s
    while clock() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"{worker.name} exited with {worker.process.returncode}; see {worker.log}:\n"
                               f"{worker.log.read_text(errors='replace')[-2000:]}")
        if "ready" in worker.log.read_text(errors="replace"):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{worker.name} not ready within {within_s} s; see {worker.log}")


@dataclass
class WorkerExit:
    at: float
    name: str
    pid: int
    code: int
    cause: str  # the last exception line of its log and the innermost frame of server/ before it


def exit_cause(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    error = next((x for x in reversed(lines) if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", x)), "")
    frames = [x.strip() for x in lines if 'File "' in x and f"{ROOT}/server/" in x]
    where = frames[-1].replace(f"{ROOT}/", "") if frames else ""
    return f"{error[:200]} at {where}" if where else error[:200] or "no exception in its log"


async def supervise(workers: list[ServerProcess], env: dict[str, str], var_dir: Path, deliberate: set[int],
                    exits: list[WorkerExit], stop: asyncio.Event, log: Log) -> None:
    """Restart a worker that exits unasked, as a process manager would (restart: always), and note why."""
    while not stop.is_set():
        for i, worker in enumerate(workers):
            code = worker.process.poll()
            if code is not None and worker.process.pid not in deliberate:
                exits.append(WorkerExit(clock(), worker.name, worker.process.pid, code, exit_cause(worker.log)))
                log(f"{worker.name} (pid {worker.process.pid}) exited with {code}: {exits[-1].cause}; restarting it")
                workers[i] = spawn_worker(env, var_dir, i)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RedisRestart:
    stopped: float = 0.0  # SIGTERM sent
    gone: float = 0.0  # the process had exited
    started: float = 0.0  # the new process spawned
    back: float = 0.0  # listening again


async def restart_redis(holder: list[embedded.ChildService], var_dir: Path, down_s: float,
                        event: RedisRestart) -> None:
    """Stop redis-server and start it again with the same arguments (so on the same port) `down_s` later."""
    old = holder[0]
    args = [str(a) for a in old.process.args]
    port = int(args[args.index("--port") + 1])
    event.stopped = clock()
    await asyncio.to_thread(old.stop)
    event.gone = clock()
    await asyncio.sleep(down_s)
    with (var_dir / f"redis-{port}-restarted.out").open("ab") as out:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    event.started = clock()
    holder[0] = embedded.ChildService("redis", old.url, process)
    while not port_open(port):
        if process.poll() is not None:
            raise RuntimeError(f"redis-server did not restart (exit {process.returncode})")
        await asyncio.sleep(0.01)
    event.back = clock()


# ---------------------------------------------------------------------------- set-up


async def prepare(mongo_url: str, push_sink: str, push_subscribers: int, log: Log) -> Catalog:
    content_dir = ROOT / "content"
    client = mongo.connect(mongo_url)
    try:
        db = client[DB_NAME]
        await mongo.ensure_indexes(db)
        await load_content(db, content_dir)
        districts = sorted([str(d["_id"]) async for d in db.districts.find({}, {"_id": 1})])
        areas = [d async for d in db.areas.find({}, {"_id": 1, "district_id": 1, "capacity": 1})]
        merchants = [d async for d in db.merchants.find({"status": "published"}, {"_id": 1, "location": 1})]
        if not districts or not areas or not merchants:
            raise RuntimeError(f"content in {content_dir} has no districts, areas or published merchants")
        points = [(float(m["location"]["coordinates"][1]), float(m["location"]["coordinates"][0]))
                  for m in merchants if m.get("location")]
        admin = await accounts.create_admin(db, "bench-admin@example.com", PASSWORD)
        invitation = await accounts.invite(db, admin.actor(), "bench-operator@example.com", "operator", [],
                                           districts)
        operator = await accounts.accept_invitation(db, invitation.token, PASSWORD)
        token = await accounts.create_token(db, operator.actor(), "bench load", ["districts"])
        assert token.secret is not None
        # the operator's edits during phase 2: a published, active offer of one shop, edited with the shop's token
        now = datetime.now(UTC)
        offer = await db.offers.find_one({"status": "published", "valid_from": {"$lte": now},
                                          "valid_until": {"$gt": now + timedelta(days=1)}})
        if offer is None:
            raise RuntimeError("content has no active published offer for the operator to edit")
        shop_invite = await accounts.invite(db, admin.actor(), "bench-shop@example.com", "merchant",
                                            [offer["merchant_id"]], [])
        shop = await accounts.accept_invitation(db, shop_invite.token, PASSWORD)
        shop_token = await accounts.create_token(db, shop.actor(), "bench edits", ["offers"])
        assert shop_token.secret is not None
        keys = {}
        for area in areas:
            _, key = await sensors.register(db, admin.actor(), str(area["_id"]), "people_counter", "bench load")
            keys[str(area["_id"])] = key
        # the inbox the shoppers read: a few messages per district, on a topic no push subscriber follows
        now = datetime.now(UTC)
        for i, district in enumerate(districts * 2):
            await campaign_service.create(db, operator.actor(), campaign_model.CampaignInput(
                title={"zh-CN": f"本周优惠 {i}", "zh-HK": f"本週優惠 {i}", "en": f"Offers of the week {i}"},
                body={"zh-CN": "到店出示即享九折", "en": "10 % off in store"}, district_ids=[district],
                topics=["offers"]), now=now)
        if push_subscribers:
            await add_push_subscribers(db, push_sink, push_subscribers)
            log(f"{push_subscribers} push subscriptions to {push_sink} in {CAMPAIGN_DISTRICT} (topic festivals)")
    finally:
        await client.close()
    hashes = {p.stem: digest(p.read_text(encoding="utf-8")) for p in OPERATIONS.glob("*.graphql")}
    return Catalog(
        districts=districts, merchants=[to_global("Merchant", str(m["_id"])) for m in merchants], points=points,
        area_gid={str(a["_id"]): to_global("Area", str(a["_id"])) for a in areas},
        area_district={str(a["_id"]): str(a["district_id"]) for a in areas},
        area_capacity={str(a["_id"]): int(a.get("capacity") or 0) for a in areas},
        sensor_keys=keys, operator_token=token.secret, hashes=hashes, shop_token=shop_token.secret,
        shop_offer=offer,
        subscription_text=(OPERATIONS / "CrowdUpdates.graphql").read_text(encoding="utf-8"))


async def add_push_subscribers(db: Any, sink_url: str, count: int) -> None:
    """Subscriptions as subscribePush stores them (written directly: the mutation allows 20 per IP and 10 min)."""
    key = ec.generate_private_key(ec.SECP256R1())  # one browser key for all: the sender encrypts per message
    p256dh = b64url(key.public_key().public_bytes(serialization.Encoding.X962,
                                                  serialization.PublicFormat.UncompressedPoint))
    now = datetime.now(UTC)
    docs = []
    for i in range(count):
        endpoint = f"{sink_url}/push/s{i:05d}"
        docs.append(PushSubscription(subscription_id(endpoint), endpoint, p256dh, b64url(os.urandom(16)),
                                     origin_of(endpoint), (CAMPAIGN_DISTRICT,), ("festivals",), LOCALES[i % 3],
                                     now, now).to_doc())
    for start in range(0, count, 500):
        await db[PUSH_SUBSCRIPTIONS].insert_many(docs[start:start + 500])


# ---------------------------------------------------------------------------- the campaign under fire


@dataclass
class CampaignRun:
    created: float = 0.0
    answered: float = 0.0
    campaign_id: str = ""
    create_error: str = ""
    killed: float = 0.0
    killed_worker: str = ""
    received_at_kill: int = 0
    finished: float = 0.0  # every delivery record final and the sink quiet
    counts: dict[str, int] = field(default_factory=dict)  # sink: token -> messages
    sink_requests: int = 0
    sink_rejected: int = 0
    states: dict[str, int] = field(default_factory=dict)
    by_consumer: dict[str, int] = field(default_factory=dict)


async def sink_counts(client: httpx.AsyncClient, sink_url: str) -> Doc:
    response = await client.get(f"{sink_url}/counts")
    response.raise_for_status()
    result: Doc = response.json()
    return result


async def run_campaign(base_url: str, sink_url: str, mongo_url: str, catalog: Catalog, workers: list[ServerProcess],
                       deliberate: set[int], subscribers: int, deadline: float, run: CampaignRun, log: Log) -> None:
    """createCampaign as the operator; SIGKILL the first worker once KILL_AT of the subscribers were served
    (the supervisor leaves it dead); wait until every delivery record is final (or `deadline`)."""
    variables = {"input": {
        "title": {"zhCN": "华强北电子节今晚开幕", "zhHK": "華強北電子節今晚開幕",
                  "en": "HQB electronics festival tonight"},
        "body": {"zhCN": "凭此消息到店享限时优惠", "zhHK": "憑此訊息到店享限時優惠",
                 "en": "Show this message for a deal"},
        "districtIds": [to_global("District", CAMPAIGN_DISTRICT)], "topics": ["FESTIVALS"]}}
    db_client = mongo.connect(mongo_url)
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
        try:
            run.created = clock()
            response = await client.post(f"{base_url}/graphql", json={"query": CREATE_CAMPAIGN, "variables": variables},
                                         headers={"authorization": f"Bearer {catalog.operator_token}"})
            run.answered = clock()
            payload = response.json()
            made = (payload.get("data") or {}).get("createCampaign") or {}
            if response.status_code != 200 or payload.get("errors") or made.get("errors") or not made.get("campaign"):
                run.create_error = f"HTTP {response.status_code}: {response.text[:400]}"
                log(f"createCampaign failed: {run.create_error}")
                return
            run.campaign_id = from_global(made["campaign"]["id"])[1]
            log(f"campaign {run.campaign_id} created in {(run.answered - run.created) * 1000:.0f} ms")
            db = db_client[DB_NAME]
            quiet_since, last_total = clock(), -1
            while clock() < deadline:
                counts = await sink_counts(client, sink_url)
                served = len(counts["tokens"])
                if not run.killed and served >= subscribers * KILL_AT:
                    victim = workers[0]
                    deliberate.add(victim.process.pid)
                    victim.process.send_signal(signal.SIGKILL)
                    run.killed, run.killed_worker, run.received_at_kill = clock(), victim.name, served
                    log(f"SIGKILL {victim.name} (pid {victim.process.pid}) with {served}/{subscribers} served")
                total = int(counts["requests"])
                if total != last_total:
                    quiet_since, last_total = clock(), total
                if run.killed and clock() - quiet_since > 2:
                    states = await fanout.delivery_counts(db, run.campaign_id)
                    open_records = states.get(fanout.CLAIMED, 0) + states.get(fanout.RETRY, 0)
                    if sum(states.values()) >= subscribers and open_records == 0:
                        run.finished = clock()
                        break
                await asyncio.sleep(0.2)
            counts = await sink_counts(client, sink_url)
            run.counts = {str(k): int(v) for k, v in counts["tokens"].items()}
            run.sink_requests, run.sink_rejected = int(counts["requests"]), int(counts["rejected"])
            run.states = await fanout.delivery_counts(db, run.campaign_id)
            by: Counter[str] = Counter()
            async for doc in db[fanout.DELIVERIES].find({"campaign_id": run.campaign_id}, {"by": 1}):
                by[str(doc.get("by"))] += 1
            run.by_consumer = dict(by)
        finally:
            await db_client.close()


# ---------------------------------------------------------------------------- run


@dataclass
class Result:
    steps: list[Step] = field(default_factory=list)
    rate: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)
    lags: list[float] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, kB) of the web process
    rss_start: int = 0
    rss_end: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds inside the window
    recorder: Recorder = field(default_factory=Recorder)
    base: list[LiveSubscription] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    restart: RedisRestart | None = None
    campaign: CampaignRun | None = None
    loadavg: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    pids: dict[str, int] = field(default_factory=dict)
    worker_exits: list[WorkerExit] = field(default_factory=list)
    census: list[Doc] = field(default_factory=list)  # bench/serve.py --memory-out lines: window start, end
    static_steps: list[Step] = field(default_factory=list)
    cache_answers: Counter[str] = field(default_factory=Counter)  # X-Cache of shopper GETs in phase 2
    cache_by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    operator: Operator | None = None
    cache_entries: int = 0
    cache_bytes_per_1000: float = 0.0
    warming: Warming | None = None


async def sample_rss(pid: int, into: list[tuple[float, int]], stop: asyncio.Event, every: float = 5.0) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            into.append((clock(), rss_kb(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def at(when: float, coroutine: Coroutine[Any, Any, None]) -> None:
    await asyncio.sleep(max(0.0, when - clock()))
    await coroutine


async def run(args: argparse.Namespace, var_dir: Path, log: Log) -> Result:
    result = Result()
    result.loadavg = (os.getloadavg(), ())
    children: list[Any] = []
    redis_holder: list[embedded.ChildService] = []
    shoppers: Shoppers | None = None
    feeder: Sensors | None = None
    stop_feed = asyncio.Event()
    feed_task: asyncio.Task[None] | None = None
    push_n = args.push_subscribers if args.fault else 0
    try:
        mongo_child = embedded.start_mongo(var_dir, in_memory=True)
        children.append(mongo_child)
        redis_holder.append(embedded.start_redis(var_dir))
        log(f"nx-27017 at {mongo_child.url}, redis at {redis_holder[0].url}")
        env = {**os.environ, "MONGODB_URL": mongo_child.url, "REDIS_URL": redis_holder[0].url, "MONGODB_DB": DB_NAME,
               "SHANGQUAN_CONTENT_DIR": str(ROOT / "content"), "SHANGQUAN_VAR_DIR": str(var_dir), "DEBUG": "",
               "CROWD_SIMULATOR": "", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json",
               # the bench must not wait for Shenzhen's morning, nor be capped by earlier runs
               "PUSH_QUIET_HOURS": "", "PUSH_APPROVAL": "", "PUSH_DAILY_CAP": "0",
               "ALLOW_LOCAL_PUSH_SERVICES": "1" if args.fault else "",
               "PUSH_SINK_DELAY_MS": str(args.sink_delay_ms)}
        census = var_dir / "web-memory.jsonl"
        if args.memory_census:
            env["BENCH_MEMORY_OUT"] = str(census)
            if args.tracemalloc:
                env["PYTHONTRACEMALLOC"] = str(args.tracemalloc)
        sink: ServerProcess | None = None
        if args.fault:
            sink = spawn_server("push-sink", env, var_dir)
            children.append(sink)
        catalog = await prepare(mongo_child.url, sink.url if sink else "", push_n, log)
        log(f"content loaded: {len(catalog.districts)} districts, {len(catalog.area_gid)} areas with a sensor each, "
            f"{len(catalog.merchants)} merchants")
        web = spawn_server("asgi", env, var_dir)
        children.append(web)
        await wait_ready(web)
        workers = [spawn_worker(env, var_dir, i) for i in range(2 if args.fault else 1)]
        children.extend(workers)
        await asyncio.gather(*(wait_worker(w) for w in workers))
        result.pids = {"web": web.process.pid, **{w.name: w.process.pid for w in workers},
                       "nx-27017": mongo_child.process.pid, "redis": redis_holder[0].process.pid,
                       "load generator": os.getpid()}
        deliberate: set[int] = set()
        supervisor = asyncio.create_task(supervise(workers, env, var_dir, deliberate, result.worker_exits,
                                                   stop_feed, log))
        log(f"web {web.url} (pid {web.process.pid}); workers {[w.process.pid for w in workers]}")

        recorder = result.recorder
        shoppers = Shoppers(web.url, catalog, recorder, seed=20261129, weights=args.mix)
        feeder = Sensors(web.url, catalog, recorder, seed=7)
        feed_task = asyncio.create_task(feeder.run(args.readings, stop_feed))
        ws_url = web.url.replace("http://", "ws://") + "/graphql"
        gate = asyncio.Semaphore(10)

        async def open_base(i: int) -> LiveSubscription:
            sub = LiveSubscription(catalog.districts[i % len(catalog.districts)], recorder, keep_arrivals=True)
            async with gate:
                await sub.open(ws_url, catalog.subscription_text, shoppers.phone())
            return sub

        result.base = list(await asyncio.gather(*(open_base(i) for i in range(args.subscribers))))
        log(f"{args.subscribers} long-lived subscriptions open; sensors post {args.readings:g} readings/s")

        if args.warm_concurrency:
            log(f"warming the public cache: each distinct prepared read once, {args.warm_concurrency} at a time")
            result.warming = await warm_cache(shoppers, args.warm_concurrency, result.pids, web.process.pid)
            log(f"  {result.warming.requests} reads in {result.warming.seconds:.1f} s "
                f"({result.warming.misses} misses, {result.warming.errors} errors)")
        if args.per_kind:
            await cost_per_kind(shoppers, web.url, args.per_kind, args.step_seconds, result.pids, log)
        if args.rate:
            result.rate = args.rate
        else:
            log(f"phase 1: closed loop, {args.step_seconds:g} s per step (after 3 s warm-up)")
            result.steps = await saturate(shoppers, args.levels, 3.0, args.step_seconds, log, result.pids,
                                          at_least=SCAN_AT_LEAST)
            result.rate = max(s.rps for s in result.steps) * args.load
            log(f"phase 1b: the same closed loop on a static file ({STATIC_PATH}) of the same web process")
            static = StaticFile(web.url)
            try:
                result.static_steps = await saturate(static, args.levels, 3.0, args.step_seconds, log, result.pids,
                                                     at_least=max(SCAN_AT_LEAST, result.steps[-1].concurrency))
            finally:
                static.client.close()
        if args.phase1_only:
            result.loadavg = (result.loadavg[0], os.getloadavg())
            return result
        log(f"phase 2: open loop at {result.rate:.1f} req/s, {args.warmup:g} s warm-up + {args.minutes:g} min")
        stop_rss = asyncio.Event()
        rss_task = asyncio.create_task(sample_rss(web.process.pid, result.rss, stop_rss))
        seconds = args.minutes * 60
        t_begin = clock()
        w0 = t_begin + args.warmup
        w1 = w0 + seconds
        result.window = (w0, w1)
        side: list[asyncio.Task[None]] = []

        async def mark_start() -> None:
            if args.memory_census:
                web.process.send_signal(signal.SIGUSR2)
            result.rss_start = rss_kb(web.process.pid)
            result.cpu = {name: -cpu_seconds(pid) for name, pid in result.pids.items()}

        side.append(asyncio.create_task(at(w0, mark_start())))
        if args.fault:
            assert sink is not None
            result.restart = RedisRestart()
            result.campaign = CampaignRun()
            side.append(asyncio.create_task(at(w0 + seconds * 0.2, restart_redis(
                redis_holder, var_dir, args.redis_down, result.restart))))
            side.append(asyncio.create_task(at(w0 + seconds * 0.45, run_campaign(
                web.url, sink.url, mongo_child.url, catalog, workers, deliberate, push_n,
                w1 + args.campaign_grace, result.campaign, log))))
        result.operator = Operator(web.url, catalog)
        side.append(asyncio.create_task(at(w0, result.operator.run(w1))))

        async def count_cache_from_w0() -> None:
            shoppers.cache_answers.clear()
            shoppers.cache_by_kind.clear()

        side.append(asyncio.create_task(at(w0, count_cache_from_w0())))
        result.lags = await open_loop(shoppers, result.rate, args.warmup + seconds)
        result.cache_answers = Counter(shoppers.cache_answers)
        result.cache_by_kind = Counter(shoppers.cache_by_kind)
        with contextlib.suppress(Exception):
            result.cache_entries, result.cache_bytes_per_1000 = await cache_memory(redis_holder[0].url)
        result.rss_end = rss_kb(web.process.pid)
        if args.memory_census:
            web.process.send_signal(signal.SIGUSR2)
            await asyncio.sleep(3)
            result.census = [json.loads(line) for line in census.read_text().splitlines()]
        for name, pid in result.pids.items():
            with contextlib.suppress(OSError):
                result.cpu[name] = result.cpu.get(name, 0.0) + cpu_seconds(pid)
        result.cpu = {k: v for k, v in result.cpu.items() if v >= 0}
        stop_rss.set()
        await rss_task
        if side:
            log("waiting for the fault tasks to finish")
            for task in side:
                await task
        stop_feed.set()
        await feed_task
        await supervisor
        await asyncio.sleep(3)  # the last readings reach the subscriptions
        result.readings = list(feeder.stored)
        result.loadavg = (result.loadavg[0], os.getloadavg())
        return result
    finally:
        stop_feed.set()
        if feed_task is not None:
            with contextlib.suppress(Exception):
                await feed_task
        for closer in ([shoppers.aclose()] if shoppers else []) + ([feeder.aclose()] if feeder else []):
            with contextlib.suppress(Exception):
                await closer
        await asyncio.gather(*(s.close() for s in result.base), return_exceptions=True)
        for child in reversed(children):
            with contextlib.suppress(Exception):
                child.stop()
        for child in redis_holder:
            with contextlib.suppress(Exception):
                child.stop()


# ---------------------------------------------------------------------------- report


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f}" if values else "-"


def delivery_check(result: Result, fault_window: tuple[float, float] | None) -> tuple[int, int, int]:
    """(expected, missed, missed inside the fault window): readings stored while a long-lived subscription of
    their district was open (from 1 s after it opened to 5 s before the end) that it was never told about."""
    end = max((r.posted for r in result.readings), default=0.0) - 5
    expected = missed = in_fault = 0
    for sub in result.base:
        for reading in result.readings:
            if reading.district != sub.district or not sub.opened_at + 1 <= reading.posted <= end:
                continue
            expected += 1
            if reading.at_ms not in sub.seen.get(reading.area_gid, ()):
                missed += 1
                if fault_window and fault_window[0] <= reading.posted <= fault_window[1]:
                    in_fault += 1
    return expected, missed, in_fault


def render_restart(result: Result, outcomes: list[Outcome]) -> list[str]:
    r = result.restart
    if r is None or not r.back:
        return ["Redis restart: did not happen"]
    w0 = result.window[0]
    failed = [o for o in outcomes if not o.ok and o.ended >= r.stopped]
    by_kind = Counter(o.kind for o in failed)
    lines = [f"Redis restart: SIGTERM at +{r.stopped - w0:.1f} s, gone after {r.gone - r.stopped:.2f} s, "
             f"listening again at +{r.back - w0:.1f} s (down {r.back - r.stopped:.1f} s)"]
    if failed:
        last = max(o.ended for o in failed)
        lines.append(f"  failures from the stop on: {len(failed)} ({dict(by_kind)}), first at "
                     f"+{min(o.ended for o in failed) - w0:.1f} s, last at +{last - w0:.1f} s")
        lines.append(f"  requests succeed again {max(0.0, last - r.back):.1f} s after Redis was back "
                     f"({last - r.stopped:.1f} s after it stopped)")
    else:
        lines.append("  no request failed")
    # per long-lived subscription: the first update carrying a reading POSTed after Redis was back
    firsts: list[float] = []
    carried: list[float] = []
    after_back = [rd for rd in result.readings if rd.posted > r.back]
    for sub in result.base:
        for t, stamps in sub.arrivals:
            if t <= r.back:
                continue
            hit = [rd for rd in after_back if rd.district == sub.district and stamps.get(rd.area_gid) == rd.at_ms]
            if hit:
                firsts.append(t - r.back)
                carried.append(t - min(rd.posted for rd in hit))
                break
    firsts.sort()
    carried.sort()
    lines.append(f"  subscriptions: {len(firsts)}/{len(result.base)} long-lived ones got a reading POSTed after the "
                 f"restart: p50 {ms(firsts, 50)} ms, max {ms(firsts, 100)} ms after Redis was back (mostly waiting "
                 f"for the next reading of their district); that update took p50 {ms(carried, 50)} ms, "
                 f"max {ms(carried, 100)} ms from its POST")
    return lines


def render_campaign(c: CampaignRun | None, subscribers: int, w0: float) -> list[str]:
    if c is None:
        return []
    if c.create_error:
        return [f"push campaign: createCampaign failed: {c.create_error}"]
    got = [n for n in c.counts.values() if n > 0]
    lost = subscribers - len(got)
    duplicated = sum(1 for n in got if n > 1)
    extra = sum(n - 1 for n in got if n > 1)
    done = f"all delivery records final {c.finished - c.created:.1f} s after createCampaign " \
           f"({c.finished - c.killed:.1f} s after the kill)" if c.finished else "NOT finished before the deadline"
    kill = f"{c.killed_worker} SIGKILLed at +{c.killed - w0:.1f} s with {c.received_at_kill} subscriptions served" \
        if c.killed else f"no worker killed: fewer than {KILL_AT:.0%} of the subscriptions were ever served"
    return [
        f"push campaign to {subscribers} subscriptions: created at +{c.created - w0:.1f} s "
        f"(createCampaign answered in {(c.answered - c.created) * 1000:.0f} ms); {kill}",
        f"  {done}",
        f"  push messages lost (subscriptions that got none): {lost}",
        f"  push messages duplicated (subscriptions that got more than one): {duplicated} ({extra} extra messages)",
        f"  push service: {c.sink_requests} requests, {c.sink_rejected} rejected; delivery records by state "
        f"{dict(sorted(c.states.items()))}; by consumer {dict(sorted(c.by_consumer.items()))}",
    ]


def saturation(result: Result, args: argparse.Namespace) -> str:
    best_mix = max(s.rps for s in result.steps)
    best_static = max(s.rps for s in result.static_steps)
    line = f"saturation: shopper mix {best_mix:.1f} req/s, static file {best_static:.1f} req/s, ratio " \
           f"{best_mix / best_static:.3f}"
    if args.mix is not None:
        return line + f" (--mix {args.mix}: not the issue's mix, no goal)"
    return (line + f" (goal ≥ 0.7: {'MET' if best_mix >= 0.7 * best_static else 'NOT MET'}); "
            f"goal ≥ 1,000 req/s: {'MET' if best_mix >= 1000 else 'NOT MET'}")


def mix_weights(text: str) -> dict[str, int]:
    """--mix merchant=30,search=15: the shopper kinds to send and their weights (others not sent)."""
    weights = {}
    for item in text.split(","):
        kind, _, weight = item.partition("=")
        if kind not in WEIGHTS or not weight.isdigit():
            raise argparse.ArgumentTypeError(f"{item!r}: want KIND=WEIGHT with KIND one of {', '.join(WEIGHTS)}")
        weights[kind] = int(weight)
    if not any(weights.values()):
        raise argparse.ArgumentTypeError("every weight is 0")
    return weights


def render(result: Result, args: argparse.Namespace, command: str) -> tuple[str, bool]:
    w0, w1 = result.window
    seconds = w1 - w0
    outcomes = [o for o in result.recorder.outcomes if w0 <= o.started < w1]
    bar = "=" * 100
    load0, load1 = result.loadavg
    lines = [
        "", bar, f"shopper load benchmark{' with faults' if args.fault else ''}: the Procfile's processes, "
        "one web (uvicorn) + " + ("two workers" if args.fault else "one worker"), bar,
        f"command: {command}",
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}; load average "
        f"start {load0[0]:.2f}, end {load1[0] if load1 else float('nan'):.2f} (shared: other jobs use the cores)",
        f"setup: in-memory nx-27017, redis-server, web = bench/serve.py asgi (server.asgi:app, JSON access log), "
        f"load generator + subscribers in this process; mix {args.mix or WEIGHTS}; {args.subscribers} long-lived "
        f"subscriptions; {args.readings:g} sensor readings/s",
    ]
    if result.warming is not None:
        w = result.warming
        lines += ["", f"cache warm-up: {w.requests} distinct reads once each in {w.seconds:.1f} s ({w.misses} misses, "
                  f"{w.errors} errors); CPU s: {', '.join(f'{k} {v:.1f}' for k, v in w.cpu.items())}; web RSS "
                  f"{w.rss_kb[0] / 1024:.1f} -> {w.rss_kb[1] / 1024:.1f} MiB"]
    if result.steps:
        lines += ["", "phase 1: saturation, closed loop (successful req/s of the shopper mix)"]
        for s in result.steps:
            lat = sorted(s.latencies)
            lines.append(f"  concurrency {s.concurrency:3d}: {s.rps:7.1f} req/s  p50 {ms(lat, 50):>6} ms  "
                         f"p99 {ms(lat, 99):>6} ms  errors {s.errors}{hits(s)}  cores busy: {cores(s.cpu)}"
                         f"{web_cost(s)}")
        best = max(result.steps, key=lambda s: s.rps)
        lines.append(f"  maximum {best.rps:.1f} req/s (concurrency {best.concurrency}); phase 2 at {args.load:.0%} "
                     f"= {result.rate:.1f} req/s")
        if result.static_steps:
            lines.append(f"  the same closed loop on a static file ({STATIC_PATH}):")
            for s in result.static_steps:
                lat = sorted(s.latencies)
                lines.append(f"  concurrency {s.concurrency:3d}: {s.rps:7.1f} req/s  p50 {ms(lat, 50):>6} ms  "
                             f"p99 {ms(lat, 99):>6} ms  errors {s.errors}  cores busy: {cores(s.cpu)}"
                             f"{web_cost(s)}")
        lines.append("  (cores busy: CPU seconds per second of each process in the step; the web process near 1.00 "
                     "is the server saturated, the load generator near 1.00 is the generator's limit)")
    else:
        lines += ["", f"phase 1 skipped: --rate {result.rate:g}"]
    if args.phase1_only:
        lines += [saturation(result, args), bar] if result.steps and result.static_steps else [bar]
        return "\n".join(lines), True
    lags = sorted(result.lags)
    lines += ["", f"phase 2: open loop at {result.rate:.1f} req/s, {args.warmup:g} s warm-up, then {seconds:.0f} s "
              f"measured; arrivals started late by p99 {ms(lags, 99)} ms / max {ms(lags, 100)} ms "
              "(the load generator keeping up)"]
    header = f"  {'kind':<14}{'count':>8}{'per s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'errors':>8}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    kinds = [*SHOPPER_KINDS, "ingest", "subscription"]
    for kind in [*kinds, "all shopper", "all"]:
        if kind == "all shopper":
            rows = [o for o in outcomes if o.kind in SHOPPER_KINDS]
        elif kind == "all":
            rows = outcomes
        else:
            rows = [o for o in outcomes if o.kind == kind]
        if not rows:
            continue
        lat = sorted(o.ended - o.started for o in rows if o.ok)
        errors = sum(1 for o in rows if not o.ok)
        count = len(rows) if kind != "subscription" else 0
        lines.append(f"  {kind:<14}{count:>8}{count / seconds:>8.1f}{ms(lat, 50):>8}{ms(lat, 95):>8}"
                     f"{ms(lat, 99):>8}{ms(lat, 100):>8}{errors:>8}")
    lines.append("  (subscribe: socket opened -> first message; subscription: drops and error messages of open "
                 "subscriptions; ingest: one sensor reading)")
    errors_total = sum(1 for o in outcomes if not o.ok)
    ok_total = sum(1 for o in outcomes if o.ok and o.kind in SHOPPER_KINDS)
    lines.append(f"  throughput: {ok_total / seconds:.1f} successful shopper req/s; errors in the window: "
                 f"{errors_total}")
    dropped = [s for s in result.base if s.dropped]
    fault_window = (result.restart.stopped - 1, result.restart.back + 5) \
        if result.restart and result.restart.back else None
    expected, missed, in_fault = delivery_check(result, fault_window)
    lines.append(f"  long-lived subscriptions: {len(dropped)} of {len(result.base)} dropped; crowd updates "
                 f"{expected - missed}/{expected} delivered ({missed} missed"
                 + (f", {in_fault} of them during the Redis restart" if fault_window else "") + ")")
    examples = {k: v for k, v in result.recorder.examples.items() if v}
    for kind, texts in examples.items():
        lines.append(f"  e.g. {kind}: {texts[0]}")
    mem_change = (result.rss_end - result.rss_start) / result.rss_start * 100 if result.rss_start else float("nan")
    trend = [kb for t, kb in result.rss if w0 <= t <= w1]
    step = max(1, len(trend) // 10)
    lines += ["", f"web RSS: {result.rss_start / 1024:.1f} MiB after warm-up, {result.rss_end / 1024:.1f} MiB at "
              f"the end: {mem_change:+.1f} %; max {max(trend, default=0) / 1024:.1f} MiB; every ~{5 * step:.0f} s: "
              + " ".join(f"{kb / 1024:.0f}" for kb in trend[::step])]
    if len(trend) >= 4:
        # A leak grows in both halves of the window; warm-up (bounded memos, the cache, held sockets reaching
        # their steady number) only before it or in its first part.
        mid = trend[len(trend) // 2]
        lines.append(f"  growth in the window's first half {(mid - trend[0]) / trend[0] * 100:+.1f} %, second half "
                     f"{(trend[-1] - mid) / mid * 100:+.1f} %"
                     + (f"; before the window: {result.warming.rss_kb[0] / 1024:.1f} MiB at the start, "
                        f"{result.warming.rss_kb[1] / 1024:.1f} after the cache warm-up" if result.warming else ""))
    if len(result.census) >= 2:
        first, last = result.census[0], result.census[-1]
        grown = Counter(last["types"])
        grown.subtract(first["types"])
        lines.append(f"web objects tracked by the GC: {first['objects']} -> {last['objects']}; grown most: "
                     + ", ".join(f"{k} {v:+d}" for k, v in grown.most_common(12) if v > 0))
        if "tracemalloc" in first and "tracemalloc" in last:
            before = {site: size for site, size, _ in first["tracemalloc"]}
            sites = sorted(((size - before.get(site, 0), site) for site, size, _ in last["tracemalloc"]), reverse=True)
            lines.append("  allocation sites grown most (kB): " + "; ".join(
                f"{site} {delta / 1024:+.0f}" for delta, site in sites[:8] if delta > 0))
    lines.append("CPU in the window, cores busy: " + ", ".join(
        f"{name} {value / seconds:.2f}" for name, value in result.cpu.items()))
    if args.fault:
        lines += ["", "faults:"]
        lines += ["  " + x for x in render_restart(result, outcomes)]
        lines += ["  " + x for x in render_campaign(result.campaign, args.push_subscribers, w0)]
        by_kind = dict(Counter(o.kind for o in outcomes if not o.ok))
        lines.append(f"  errors seen by clients, by kind: {by_kind or 'none'}")
    if result.worker_exits:
        lines.append("")
    for e in result.worker_exits:
        lines.append(f"worker exited unasked at +{e.at - w0:.1f} s: {e.name} (pid {e.pid}, exit {e.code}): "
                     f"{e.cause}; restarted by the bench")
    answers = result.cache_answers
    cacheable = answers["hit"] + answers["miss"]
    lines += ["", "public cache (shopper GETs in the window): "
              + ", ".join(f"{k} {v}" for k, v in answers.most_common())
              + (f"; hit ratio {answers['hit'] / cacheable:.3f} of cacheable reads, "
                 f"{answers['hit'] / sum(answers.values()):.3f} of all GETs" if cacheable else "")]
    by_kind = result.cache_by_kind
    lines.append("  misses by kind (of its GETs): " + ", ".join(
        f"{kind} {by_kind[kind, 'miss']} ({by_kind[kind, 'miss'] / total:.1%})" for kind in SHOPPER_KINDS
        if (total := sum(n for (k, _), n in by_kind.items() if k == kind))))
    lines.append(f"  Redis: {result.cache_entries} cached answers at the end, "
                 f"{result.cache_bytes_per_1000 / 1024:.0f} KiB per 1,000 cached answers (MEMORY USAGE)")
    operator = result.operator
    if operator is not None:
        lines.append(f"  operator: {operator.writes} offer edits (one every {operator.every:g} s), each followed by "
                     f"the shop's page as a shopper reads it: {operator.stale} stale reads"
                     + (f"; {len(operator.failed)} failed, e.g. {operator.failed[0]}" if operator.failed else ""))
    if result.static_steps and result.steps:
        lines.append(saturation(result, args))
    met_errors = errors_total == 0 and not dropped
    met_memory = abs(mem_change) <= 10
    met_workers = not result.worker_exits
    lines += ["", f"goal: zero errors: {'MET' if met_errors else 'NOT MET'}; web memory flat within 10 %: "
              f"{'MET' if met_memory else 'NOT MET'}; no worker died unasked: {'MET' if met_workers else 'NOT MET'}"]
    met_stale = operator is None or (operator.stale == 0 and not operator.failed)
    lines.append(f"goal: 0 stale reads after the operator's edits: {'MET' if met_stale else 'NOT MET'}")
    met = met_errors and met_memory and met_workers and met_stale
    if args.fault and result.campaign is not None:
        c = result.campaign
        got = [n for n in c.counts.values() if n > 0]
        push_ok = not c.create_error and len(got) == args.push_subscribers and all(n == 1 for n in got)
        lines.append(f"goal: no push message lost or duplicated: {'MET' if push_ok else 'NOT MET'}")
        met = met and push_ok
    lines.append(bar)
    return "\n".join(lines), met


def main() -> None:
    parser = argparse.ArgumentParser(description="Mixed shopper load: saturation, then a long run at 70 %.")
    parser.add_argument("--minutes", type=float, default=10.0, help="measured minutes of phase 2")
    parser.add_argument("--warmup", type=float, default=120.0,
                        help="seconds of phase 2 before measuring (longer than the longest subscription hold)")
    parser.add_argument("--rate", type=float, default=0.0, help="phase 2 req/s; skips phase 1")
    parser.add_argument("--load", type=float, default=0.7, help="phase 2 rate as a share of the maximum")
    parser.add_argument("--step-seconds", type=float, default=15.0, help="measured seconds per phase 1 step")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 32, 64],
                        help="phase 1 concurrency steps, comma separated")
    parser.add_argument("--warm-concurrency", type=int, default=8,
                        help="before phase 1, ask each distinct prepared read once at this concurrency (0: cold)")
    parser.add_argument("--subscribers", type=int, default=50, help="long-lived crowdUpdates subscriptions")
    parser.add_argument("--readings", type=float, default=2.0, help="sensor readings POSTed per second")
    parser.add_argument("--fault", action="store_true", help="restart Redis; push campaign; SIGKILL a worker")
    parser.add_argument("--push-subscribers", type=int, default=2000)
    parser.add_argument("--redis-down", type=float, default=3.0, help="seconds between Redis stopping and starting")
    parser.add_argument("--sink-delay-ms", type=int, default=50, help="the push service's answer time")
    parser.add_argument("--campaign-grace", type=float, default=240.0,
                        help="seconds after phase 2 to wait for the campaign to finish")
    parser.add_argument("--memory-census", action="store_true",
                        help="count the web process's objects by type at both ends of the window (SIGUSR2)")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="with --memory-census: trace allocations in the web process (slow; diagnosis only)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir (server logs)")
    parser.add_argument("--mix", type=mix_weights, default=None, metavar="KIND=W,...",
                        help=f"shopper kinds and weights instead of {WEIGHTS} (e.g. merchant=1: one kind alone)")
    parser.add_argument("--per-kind", type=int, default=0, metavar="CONCURRENCY",
                        help="before phase 1, measure each shopper kind alone and the static file at this concurrency")
    parser.add_argument("--phase1-only", action="store_true",
                        help="stop after phase 1 (saturation of the mix and of the static file)")
    args = parser.parse_args()
    if args.subscribers < 1 or args.readings <= 0 or args.minutes <= 0:
        parser.error("need --subscribers >= 1, --readings > 0, --minutes > 0")
    command = shlex.join(["python", *sys.argv])

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    var_dir = Path(tempfile.mkdtemp(prefix="shangquan-load-"))
    try:
        result = uvloop.run(run(args, var_dir, log))
    finally:
        if args.keep:
            log(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    text, met = render(result, args, command)
    print(text, flush=True)
    if not met:
        sys.exit(2)


if __name__ == "__main__":
    main()
