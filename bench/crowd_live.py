"""Benchmark: the crowd flow, from sensor batches to live subscribers, in one run.

    python bench/crowd_live.py [--duration 10] [--warmup 2] [--posters 4] [--batch 100]
                               [--subscribers 200] [--client-procs N] [--posts 50] [--rate 5] [--no-cross-process]
                               [--no-deflate] [--compare-clients] [--client-poll-ms N] [--profile] [--keep]

Starts an in-memory nx-27017 and a redis-server, loads content/ (or, when it is missing,
tests/fixtures/content) into database "bench", creates an admin and registers sensors in one
district (huaqiangbei), then runs the real app - server.asgi.create_app() from the environment,
through bench/serve.py - one uvicorn process (one worker) per web server: "web A" throughout,
"web B" for the cross-process phase only (started after the ingest phases, so that no second
web process listens to Redis while ingestion is measured).

Phases, in this order:

1. ingest alone: `--posters` clients, each with its own sensor, keep POSTing batches of
   `--batch` valid readings to web A's /ingest/crowd, spread round-robin over the district's
   areas, every reading with its own (sensor, area, millisecond): none is a duplicate.  After
   `--warmup` s, `--duration` s are measured: readings accepted ("stored" in the answers),
   POST latency, and the CPU seconds (/proc/<pid>/stat utime+stime) of web A, nx-27017,
   redis-server and this load generator.  Readings/s are also given per CPU-second of web A
   and per CPU-second of all server-side processes (web A + nx-27017 + redis-server).
2. live latency, one process: `--subscribers` WebSocket clients (graphql-transport-ws over
   RFC 6455, spoken by bench/live_clients.py itself) subscribe to crowdUpdates of the district on web A.
   A primer reading checks that every subscription is live; then `--posts` single readings,
   `--rate` per second, each with a unique occupancy, are POSTed to web A by a sensor of their
   own area.  For every (post, subscriber) pair: the time from just before the POST is sent
   to the arrival of the update carrying that occupancy, or of the first newer one when its own
   frame was coalesced away (counted as superseded).  Missing pairs are counted and shown.  The web
   process's own fan-out time per frame (shangquan_live_fan_out_seconds) is shown beside it.
2b. with --compare-clients: phase 2 again with the subscribers on the `websockets` library's
   client on asyncio's own event loop (the client this bench had before) instead of
   bench/live_clients.py's lean one on uvloop: what the client side adds on a shared machine.
3. ingest with the subscribers connected: as 1, but every POST's district update is also fanned
   out by web A to the subscribers (who keep reading); updates delivered per second are counted.
4. live latency across processes (unless --no-cross-process): the subscribers reconnect, half
   to web A and half to web B, and the readings are POSTed to web B, whose publish reaches web A
   through Redis (and web B itself through Redis too: every process follows the channel).
5. with --profile: phase 2 once more on a fresh web server ("web P", bench/serve.py --profile-out)
   with cProfile switched on (SIGUSR1) after the subscriptions opened; where its time goes.

Subscribers offer permessage-deflate, as browsers do (--no-deflate: they do not).  They live in
`--client-procs` child processes (bench/live_clients.py, default one per 1,250 subscribers), each
one event loop of asyncio.Protocol sockets that stamp arrivals with time.time() as the bytes come in
and parse them only after the window; the
latency is that stamp minus this process's time.time() just before the POST (one machine, one
clock).  On a 2-core machine the clients still share the cores with the web processes: their CPU
is shown beside the servers'.  On loopback a web process's send also runs the receiving socket's TCP input and
wakes the client process waiting for it, all charged to the web process; with --client-poll-ms N the clients
nap N ms between looks at their sockets instead of waiting in epoll (arrivals stamped up to N ms later), so
the web's CPU per update leaves out the waking, which on a network is the phones' own kernels' work.
Web A's RSS before and after the subscribers connect gives the
memory of an idle subscriber.
Exits with status 2 when any (post, subscriber) delivery is missing.

The throughput readings are stamped ~35 minutes in the past (older than the 15-minute stale
window, well inside the 48-hour limit), so they never outvote the latency sensor's fresh
number in its area: the live occupancy of that area is exactly the last latency reading.
The ingestion code path is the same for fresh and stale readings (alert rules: none exist).
MongoDB commands per POST are counted once, in process, with a pymongo CommandListener on an
app of the same build; Redis commands per POST come from INFO commandstats over each window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from graphql_read import IGNORED_COMMANDS, ServerProcess, cpu_seconds, percentile, spawn_server, summarize_profile
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent
from redis.asyncio import Redis
from websockets.typing import Subprotocol

from server.api.ids import to_global
from server.asgi import create_app
from server.content.loader import load_content
from server.domain.accounts.service import create_admin
from server.domain.crowd import sensors
from server.services import embedded, mongo
from server.settings import ROOT, Settings

# Every simulated client comes from 127.0.0.1: per-client limits (and the per-address socket cap) would
# measure the limiter, not the app.
NO_RATE_LIMITS = {"RATE_LIMIT_GRAPHQL_COST": "0", "RATE_LIMIT_REQUESTS": "0", "RATE_LIMIT_INGEST_BATCHES": "0",
                  "WS_MAX_SOCKETS_PER_ADDRESS": "0",
                  # 5,000 sockets connecting at once to an overloaded 2-core box wait longer than a phone should
                  "WS_INIT_TIMEOUT_SECONDS": "300"}
DB_NAME = "bench"
DISTRICT = "huaqiangbei"
SUBSCRIPTION = ("subscription($d: ID!) { crowdUpdates(districtId: $d) "
                "{ sentAt areas { areaId crowd { occupancy } } } }")
PROTOCOL = Subprotocol("graphql-transport-ws")
STALE_MINUTES = Settings().crowd_stale_minutes
THROUGHPUT_AGE = timedelta(minutes=STALE_MINUTES + 20)

Doc = dict[str, Any]
Log = Callable[[str], None]


# ---------------------------------------------------------------------------- measuring windows


@dataclass
class Window:
    """What one measured window cost: wall seconds, CPU seconds per process, Redis commands."""

    started: float  # time.time()
    seconds: float
    cpu: dict[str, float]
    redis_calls: dict[str, int]
    loadavg_1min: float


async def redis_calls(redis: Redis) -> Counter[str]:
    stats: dict[str, Any] = await redis.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()
                    if isinstance(v, dict) and "calls" in v})


class Meter:
    """Samples CPU time of named processes and Redis command counts at both ends of a window."""

    def __init__(self, pids: dict[str, int], redis: Redis) -> None:
        self.pids = pids
        self.redis = redis
        self.t0 = self.wall0 = 0.0
        self.cpu0: dict[str, float] = {}
        self.calls0: Counter[str] = Counter()

    async def start(self) -> None:
        self.calls0 = await redis_calls(self.redis)
        self.cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.t0, self.wall0 = time.perf_counter(), time.time()

    async def stop(self) -> Window:
        seconds = time.perf_counter() - self.t0
        cpu = {name: cpu_seconds(pid) - self.cpu0[name] for name, pid in self.pids.items()}
        calls = await redis_calls(self.redis)
        calls.subtract(self.calls0)
        calls["info"] -= 1  # our own INFO at the start
        return Window(self.wall0, seconds, cpu, {k: v for k, v in sorted(calls.items()) if v > 0},
                      os.getloadavg()[0])


# ---------------------------------------------------------------------------- ingestion load


@dataclass
class Batcher:
    """Batches of one sensor: valid readings, spread round-robin over the areas, never repeated.

    A reading's id is sensor:area:epoch-milliseconds, so each round of the areas takes the next
    millisecond; times rise, so every reading also moves the sensor's live state in crowd_state.
    """

    key: str
    areas: list[str]
    next_ms: int
    rng: random.Random

    def body(self, size: int) -> bytes:
        n = len(self.areas)
        readings = []
        for j in range(size):
            at = datetime.fromtimestamp((self.next_ms + j // n) / 1000, UTC)
            readings.append({"areaId": self.areas[j % n], "at": at.isoformat(timespec="milliseconds"),
                             "count": self.rng.randrange(100, 15_000)})
        self.next_ms += -(-size // n)
        return json.dumps({"readings": readings}, separators=(",", ":")).encode()


@dataclass
class IngestRun:
    posts: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    window: Window | None = None
    delivered: int = 0  # updates that reached subscribers inside the window (phase 3)


async def drive_ingest(base_url: str, batchers: list[Batcher], batch: int, warmup: float, duration: float,
                       meter: Meter) -> IngestRun:
    """One client per batcher keeps a POST in flight; answers finishing inside the window count."""
    limits = httpx.Limits(max_connections=len(batchers), max_keepalive_connections=len(batchers))
    run = IngestRun()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60, trust_env=False) as client:
        begin = time.perf_counter() + warmup
        end = begin + duration

        async def poster(batcher: Batcher) -> None:
            headers = {"authorization": f"Bearer {batcher.key}", "content-type": "application/json"}
            while time.perf_counter() < end:
                body = batcher.body(batch)
                started = time.perf_counter()
                report: Doc | None = None
                status = 0
                try:
                    response = await client.post("/ingest/crowd", content=body, headers=headers)
                    status = response.status_code
                    if status in (200, 207):
                        report = response.json()
                except (httpx.HTTPError, ValueError):
                    report = None
                finished = time.perf_counter()
                if not begin <= finished < end:
                    continue
                run.posts += 1
                run.statuses[status] += 1
                if report is None:
                    run.errors += 1
                    continue
                run.accepted += len(report["stored"])
                run.duplicates += len(report["duplicates"])
                run.rejected += len(report["rejected"])
                run.latencies.append(finished - started)

        async def window() -> None:
            await asyncio.sleep(max(0.0, begin - time.perf_counter()))
            await meter.start()
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            run.window = await meter.stop()

        await asyncio.gather(window(), *(poster(b) for b in batchers))
    return run


class CommandTimer(CommandListener):
    """Counts the commands a client runs while enabled, by command and collection, with their round trips."""

    def __init__(self) -> None:
        self.enabled = False
        self.labels: dict[int, str] = {}
        self.calls: Counter[str] = Counter()
        self.micros: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        if self.enabled and event.command_name not in IGNORED_COMMANDS:
            label = f"{event.command_name} {event.command.get(event.command_name)}"
            self.labels[event.request_id] = label
            self.calls[label] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        label = self.labels.pop(event.request_id, None)
        if label is not None:
            self.micros[label] += event.duration_micros

    def failed(self, event: CommandFailedEvent) -> None:
        label = self.labels.pop(event.request_id, None)
        if label is not None:
            self.micros[label] += event.duration_micros


async def count_commands(settings: Settings, batcher: Batcher, batch: int,
                         posts: int = 10) -> dict[str, tuple[float, float]]:
    """MongoDB commands per POST, by command and collection, with their mean round trip in ms (one POST at a
    time, so nothing queues): an app of the same build served in this process."""
    timer = CommandTimer()
    app = create_app(settings, load_content_on_start=False, mongo_listeners=[timer])
    port = embedded.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        headers = {"authorization": f"Bearer {batcher.key}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as client:
            for i in range(posts + 1):
                timer.enabled = i > 0  # the first one warms connections
                response = await client.post("/ingest/crowd", content=batcher.body(batch), headers=headers)
                if response.status_code != 200 or len(response.json()["stored"]) != batch:
                    raise RuntimeError(f"in-process ingest answered {response.status_code}: {response.text[:500]}")
            timer.enabled = False
    finally:
        server.should_exit = True
        await task
    return {k: (n / posts, timer.micros[k] / n / 1000) for k, n in timer.calls.items()}


# ---------------------------------------------------------------------------- subscribers


LIVE_CLIENTS = Path(__file__).with_name("live_clients.py")
Arrival = tuple[float, int | None, str]  # time.time() on arrival, occupancy of the latency area, message type


class ClientPool:
    """The subscribers, spread over child processes (bench/live_clients.py) so that the client side is not the
    bottleneck: each child holds its share on one event loop and stamps arrivals; they are parsed afterwards."""

    def __init__(self, procs: list[asyncio.subprocess.Process], urls: list[str], sizes: list[int]) -> None:
        self.procs, self.urls, self.sizes = procs, urls, sizes

    @classmethod
    async def open(cls, urls: list[str], count: int, processes: int, district_gid: str, area_gid: str,
                   deflate: bool, impl: str = "light", poll_ms: float = 0.0) -> ClientPool:
        """`count` subscribers in `processes` children, child i connecting to urls[i % len(urls)]."""
        sizes = [count // processes + (i < count % processes) for i in range(processes)]
        procs, targets = [], []
        for i, size in enumerate(sizes):
            url = urls[i % len(urls)]
            targets.append(url)
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, str(LIVE_CLIENTS), "--url", url, "--count", str(size), "--district", district_gid,
                "--area", area_gid, "--impl", impl, *(["--asyncio-loop"] if impl == "websockets" else []),
                *(["--poll-ms", str(poll_ms)] if poll_ms else []),
                *(["--deflate"] if deflate else []), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, limit=2**30))
        pool = cls(procs, targets, sizes)
        ready = await asyncio.gather(*(pool._line(p) for p in procs))
        if any(r.get("failed") for r in ready):
            await pool.close()
            raise RuntimeError(f"subscribers could not subscribe: {[r['failed'] for r in ready if r['failed']]}")
        return pool

    @staticmethod
    async def _line(proc: asyncio.subprocess.Process) -> Doc:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"client process {proc.pid} ended (status {await proc.wait()})")
        answer: Doc = json.loads(line)
        return answer

    async def ask(self, command: str) -> list[Doc]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(command.encode() + b"\n")
            await proc.stdin.drain()
        return list(await asyncio.gather(*(self._line(p) for p in self.procs)))

    async def counts(self) -> list[int]:
        return [n for answer in await self.ask("count") for n in answer["counts"]]

    async def dump(self) -> tuple[list[list[Arrival]], list[str]]:
        """Every subscriber's arrivals since the last dump (then forgotten), and why any socket ended."""
        answers = await self.ask("dump")
        arrivals = [[(float(t), v, str(k)) for t, v, k in sub] for a in answers for sub in a["arrivals"]]
        return arrivals, [e for a in answers for e in a["ended"] if e]

    def by_server(self) -> list[str]:
        """The URL each subscriber is connected to, in dump order."""
        return [url for url, size in zip(self.urls, self.sizes, strict=True) for _ in range(size)]

    @property
    def pids(self) -> dict[str, int]:
        return {f"client {i}": p.pid for i, p in enumerate(self.procs)}

    async def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.write(b"quit\n")
                await proc.stdin.drain()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()


async def wait_for_messages(pool: ClientPool, wanted: int, within: float) -> int:
    """Wait until every subscriber has `wanted` messages since the last dump (or `within` s); how many do."""
    deadline = time.monotonic() + within
    while True:
        counts = await pool.counts()
        done = sum(n >= wanted for n in counts)
        if done == len(counts) or time.monotonic() >= deadline:
            return done
        await asyncio.sleep(0.1)


async def wait_for_newest(pool: ClientPool, value: int, area: str, within: float) -> None:
    """Wait until every subscriber has received the frame carrying `value` (the last post's: frames of earlier
    posts may have been coalesced away), or `within` s. Checks the counts first: parsing is the clients' work."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        counts = await pool.counts()
        if all(counts):
            answers = await pool.ask(f"has {value}")
            if all(a["has"] for a in answers):
                return
        await asyncio.sleep(0.2)


async def wait_quiet(pool: ClientPool, quiet: float = 1.0, within: float = 60.0) -> None:
    """Wait until no subscriber has received anything for `quiet` seconds (at most `within` s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        total = sum(await pool.counts())
        await asyncio.sleep(quiet)
        if sum(await pool.counts()) == total:
            return


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------- latency


@dataclass
class FanOuts:
    """From the web processes' own metric: how many state frames they fanned out, and how long the writes of one
    frame to all of a process's subscribers took (mean; p99 as the histogram bucket bound it falls under)."""

    count: int
    mean: float
    p99_bound: float


@dataclass
class LatencyRun:
    label: str
    servers: list[str]  # the processes the subscribers are connected to
    subscribers: int
    primed: int  # subscribers that received the primer reading
    posts: int
    post_failures: int
    achieved_hz: float
    expected: int
    received: int  # (post, subscriber) pairs shown: by the post's own frame, or by a newer state's
    superseded: int  # of those, pairs shown by a newer state's frame (the post's own was coalesced away)
    duplicates: int  # updates carrying an already seen value to the same subscriber
    fan_outs: FanOuts
    other_messages: Counter[str]
    ended: list[str]
    missing_by_post: dict[int, int]  # post index -> subscribers that never got it
    latencies: list[float]  # POST sent -> update arrival, every (post, subscriber) pair received
    first_arrival: list[float]  # per post: POST sent -> first subscriber's arrival
    last_arrival: list[float]  # per post: POST sent -> last subscriber's arrival (posts everyone received)
    median_by_post: list[float]  # per post, in posting order: median over its subscribers
    post_round_trip: list[float]
    window: Window


async def fan_out_totals(client: httpx.AsyncClient, web_urls: list[str]) -> Counter[str]:
    """The web processes' shangquan_live_fan_out_seconds histogram, summed: "sum", "count" and each bucket."""
    totals: Counter[str] = Counter()
    for url in web_urls:
        text = (await client.get(url + "/metrics")).text
        for line in text.splitlines():
            if line.startswith("shangquan_live_fan_out_seconds_"):
                name, value = line.rsplit(" ", 1)
                totals[name.removeprefix("shangquan_live_fan_out_seconds_")] += float(value)  # type: ignore[assignment]
    return totals


def fan_out_summary(before: Counter[str], after: Counter[str]) -> FanOuts:
    count = int(after["count"] - before["count"])
    buckets = sorted((float(k.split('"')[1]), after[k] - before[k]) for k in after
                     if k.startswith("bucket") and "+Inf" not in k)
    p99 = next((le for le, n in buckets if n >= 0.99 * count), math.inf) if count else math.nan
    return FanOuts(count, (after["sum"] - before["sum"]) / count if count else math.nan, p99)


async def measure_latency(label: str, servers: list[str], web_urls: list[str], post_url: str, pool: ClientPool,
                          key: str, area: str, posts: int, rate: float, first_value: int, meter: Meter,
                          log: Log) -> LatencyRun:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=post_url, timeout=30, trust_env=False) as client:

        async def post(value: int) -> tuple[float, float, bool]:
            body = json.dumps({"readings": [{"areaId": area, "at": datetime.now(UTC).isoformat(), "count": value}]})
            sent = time.time()
            try:
                response = await client.post("/ingest/crowd", content=body, headers=headers)
                ok = response.status_code == 200 and response.json().get("stored") == [0]
            except (httpx.HTTPError, ValueError):
                ok = False
            return sent, time.time(), ok

        await pool.dump()  # forget what came before
        _, _, ok = await post(first_value)
        if not ok:
            raise RuntimeError(f"{label}: the primer reading was not stored")
        primed = await wait_for_messages(pool, 1, within=30)
        await wait_quiet(pool, quiet=0.5)
        await pool.dump()
        fan_outs_before = await fan_out_totals(client, web_urls)
        await meter.start()
        sent_at: dict[int, tuple[int, float]] = {}  # value -> (post index, time sent)
        round_trips: list[float] = []
        failures = 0
        t0 = time.perf_counter()
        for i in range(posts):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            value = first_value + 1 + i
            sent, answered, ok = await post(value)
            sent_at[value] = (i, sent)
            round_trips.append(answered - sent)
            failures += not ok
        sends = sorted(t for _, t in sent_at.values())
        achieved = (posts - 1) / (sends[-1] - sends[0]) if posts > 1 and sends[-1] > sends[0] else rate
        await wait_for_newest(pool, first_value + posts, area, within=30)
        window = await meter.stop()
        fan_outs = fan_out_summary(fan_outs_before, await fan_out_totals(client, web_urls))
        arrivals, ended = await pool.dump()

    latencies: list[float] = []
    duplicates = 0
    others: Counter[str] = Counter()
    arrivals_by_post: dict[int, list[float]] = {i: [] for i in range(posts)}
    post_sent = {index: sent for index, sent in sent_at.values()}
    superseded = 0
    for sub in arrivals:
        seen: set[int] = set()
        newest = -1  # the latest post index shown to this subscriber so far
        for arrived, occupancy, kind in sub:
            if kind != "next":
                others[kind] += 1
                continue
            if occupancy not in sent_at:
                others["next (other value)"] += 1
                continue
            if occupancy in seen:
                duplicates += 1
                continue
            seen.add(occupancy)
            index, _ = sent_at[occupancy]
            # Crowd frames are whole states: a post whose own frame was coalesced away (a newer state went out
            # instead) is shown by this one. Its latency is to this frame; it counts as superseded, not missed.
            for shown in range(newest + 1, index + 1):
                sent = post_sent[shown]
                latencies.append(arrived - sent)
                arrivals_by_post[shown].append(arrived - sent)
                superseded += shown != index
            newest = max(newest, index)
    count = len(arrivals)
    missing = {i: count - len(v) for i, v in arrivals_by_post.items() if len(v) < count}
    return LatencyRun(
        label=label, servers=servers, subscribers=count, primed=primed, posts=posts, post_failures=failures,
        achieved_hz=achieved, expected=posts * count, received=len(latencies), superseded=superseded,
        duplicates=duplicates, fan_outs=fan_outs,
        other_messages=others, ended=ended, missing_by_post=missing,
        latencies=sorted(latencies), first_arrival=sorted(min(v) for v in arrivals_by_post.values() if v),
        last_arrival=sorted(max(v) for v in arrivals_by_post.values() if len(v) == count),
        median_by_post=[percentile(sorted(arrivals_by_post[i]), 50) for i in range(posts)],
        post_round_trip=sorted(round_trips), window=window,
    )


# ---------------------------------------------------------------------------- set-up


@dataclass
class Fixture:
    content_dir: Path
    content_note: str
    areas: list[str]
    latency_area: str
    poster_keys: list[str]
    latency_key: str
    counter_key: str


async def prepare(mongo_url: str, posters: int, latency_area: str | None) -> Fixture:
    content_dir = ROOT / "content"
    note = f"shipped content ({content_dir})"
    if not content_dir.is_dir():
        content_dir = ROOT / "tests" / "fixtures" / "content"
        note = f"content/ is missing: the small test fixtures ({content_dir})"
    client = mongo.connect(mongo_url)
    try:
        db = client[DB_NAME]
        await mongo.ensure_indexes(db)
        await load_content(db, content_dir)
        areas = sorted([d["_id"] async for d in db.areas.find({"district_id": DISTRICT}, {"_id": 1})])
        if not areas:
            raise RuntimeError(f"district {DISTRICT!r} has no areas in {content_dir}")
        chosen = latency_area or areas[0]
        if chosen not in areas:
            raise RuntimeError(f"{chosen!r} is not an area of {DISTRICT!r}: {areas}")
        admin = await create_admin(db, "bench-admin@example.com", "bench-admin-password-2026")
        actor = admin.actor()
        keys = [(await sensors.register(db, actor, areas[i % len(areas)], "people_counter", f"bench poster {i}"))[1]
                for i in range(posters)]
        _, latency_key = await sensors.register(db, actor, chosen, "camera", "bench latency")
        _, counter_key = await sensors.register(db, actor, areas[0], "people_counter", "bench command count")
    finally:
        await client.close()
    return Fixture(content_dir, note, areas, chosen, keys, latency_key, counter_key)


async def wait_ready(server: ServerProcess, within_s: float = 90) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=server.url, timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}; see {server.log}:\n"
                                   f"{server.log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready within {within_s} s; see {server.log}")


# ---------------------------------------------------------------------------- run


async def run(args: argparse.Namespace, var_dir: Path, log: Log) -> dict[str, Any]:
    children: list[embedded.ChildService | ServerProcess] = []
    pool: ClientPool | None = None
    redis: Redis | None = None
    result: dict[str, Any] = {"loadavg_start": os.getloadavg()}
    try:
        mongo_child = embedded.start_mongo(var_dir, in_memory=True)
        children.append(mongo_child)
        redis_child = embedded.start_redis(var_dir)
        children.append(redis_child)
        log(f"nx-27017 at {mongo_child.url} (pid {mongo_child.process.pid}), "
            f"redis at {redis_child.url} (pid {redis_child.process.pid})")
        fixture = await prepare(mongo_child.url, args.posters, args.latency_area)
        log(f"content: {fixture.content_note}; district {DISTRICT} areas {fixture.areas}")
        redis = Redis.from_url(redis_child.url, decode_responses=True)

        env = {**os.environ, "MONGODB_URL": mongo_child.url, "REDIS_URL": redis_child.url, "MONGODB_DB": DB_NAME,
               "SHANGQUAN_CONTENT_DIR": str(fixture.content_dir), "SHANGQUAN_VAR_DIR": str(var_dir), "DEBUG": "",
               **NO_RATE_LIMITS}
        web_a = spawn_server("graphql", env, var_dir)
        children.append(web_a)
        await wait_ready(web_a)
        log(f"web A {web_a.url} (pid {web_a.process.pid})")

        rng = random.Random(20261129)
        start_ms = int((datetime.now(UTC) - THROUGHPUT_AGE).timestamp() * 1000)
        batchers = [Batcher(k, fixture.areas, start_ms, rng) for k in fixture.poster_keys]
        settings = replace(Settings.from_env({}), mongodb_url=mongo_child.url, redis_url=redis_child.url,
                           mongodb_db=DB_NAME, var_dir=var_dir, content_dir=fixture.content_dir,
                           rate_limit_graphql_cost=0, rate_limit_requests=0, rate_limit_ingest_batches=0)
        result["mongo_commands_per_post"] = await count_commands(
            settings, Batcher(fixture.counter_key, fixture.areas, start_ms, rng), args.batch)
        log(f"MongoDB commands per POST of {args.batch}: {result['mongo_commands_per_post']}")

        base_pids = {"nx-27017": mongo_child.process.pid, "redis": redis_child.process.pid,
                     "bench client": os.getpid()}
        meter_a = Meter({"web A": web_a.process.pid, **base_pids}, redis)

        log(f"phase 1: ingest alone, {args.posters} posters x {args.batch} readings, "
            f"{args.warmup:g} s warm-up + {args.duration:g} s")
        alone = await drive_ingest(web_a.url, batchers, args.batch, args.warmup, args.duration, meter_a)
        result["ingest_alone"] = alone
        log(f"  {alone.accepted / alone.window.seconds if alone.window else 0:.0f} readings/s")

        district_gid = to_global("District", DISTRICT)
        area_gid = to_global("Area", fixture.latency_area)
        ws_a = web_a.url.replace("http://", "ws://") + "/graphql"
        deflate = not args.no_deflate
        rss_before = rss_kib(web_a.process.pid)
        log(f"connecting {args.subscribers} subscribers to web A from {args.client_procs} client processes")
        t = time.perf_counter()
        pool = await ClientPool.open([ws_a], args.subscribers, args.client_procs, district_gid, area_gid, deflate,
                                   poll_ms=args.client_poll_ms)
        result["subscribe_seconds"] = time.perf_counter() - t
        await wait_quiet(pool, quiet=2.0)
        result["rss_kib"] = (rss_before, rss_kib(web_a.process.pid))
        log(f"  subscribed in {result['subscribe_seconds']:.1f} s; web A RSS {result['rss_kib'][0] / 1024:.0f} -> "
            f"{result['rss_kib'][1] / 1024:.0f} MiB")
        clients = pool.pids
        meter_a = Meter({"web A": web_a.process.pid, **base_pids, **clients}, redis)

        log(f"phase 2: latency, posts to web A, {args.posts} posts at {args.rate:g} Hz")
        same = await measure_latency("2. same process (posts to web A, subscribers on web A)", ["web A"],
                                     [web_a.url], web_a.url,
                                     pool, fixture.latency_key, fixture.latency_area, args.posts, args.rate, 100_000,
                                     meter_a, log)
        result["latency_same"] = same
        log(f"  received {same.received}/{same.expected}")
        if args.compare_clients:
            await pool.close()
            log("phase 2b: the same, the subscribers on the websockets library's client")
            pool = await ClientPool.open([ws_a], args.subscribers, args.client_procs, district_gid, area_gid,
                                         deflate, impl="websockets")
            await wait_quiet(pool, quiet=2.0)
            meter_w = Meter({"web A": web_a.process.pid, **base_pids, **pool.pids}, redis)
            result["latency_websockets"] = await measure_latency(
                "2b. same process, subscribers on the `websockets` client (compare with 2: the client side's share)",
                ["web A"], [web_a.url], web_a.url, pool, fixture.latency_key, fixture.latency_area, args.posts,
                args.rate, 150_000, meter_w, log)
            await pool.close()
            pool = await ClientPool.open([ws_a], args.subscribers, args.client_procs, district_gid, area_gid, deflate,
                                   poll_ms=args.client_poll_ms)
            await wait_quiet(pool, quiet=2.0)
            meter_a = Meter({"web A": web_a.process.pid, **base_pids, **pool.pids}, redis)

        log("phase 3: ingest with the subscribers connected to web A")
        await pool.dump()
        loaded = await drive_ingest(web_a.url, batchers, args.batch, args.warmup, args.duration, meter_a)
        await wait_quiet(pool)
        arrivals, ended = await pool.dump()
        if loaded.window:
            w0, w1 = loaded.window.started, loaded.window.started + loaded.window.seconds
            loaded.delivered = sum(1 for sub in arrivals for t_, _, _ in sub if w0 <= t_ < w1)
        result["ingest_loaded"] = loaded
        log(f"  {loaded.accepted / loaded.window.seconds if loaded.window else 0:.0f} readings/s, "
            f"{loaded.delivered} updates delivered in the window")
        result["ended_after_phase3"] = ended
        await pool.close()
        pool = None

        if not args.no_cross_process:
            web_b = spawn_server("graphql", env, var_dir)
            children.append(web_b)
            await wait_ready(web_b)
            log(f"web B {web_b.url} (pid {web_b.process.pid})")
            ws_b = web_b.url.replace("http://", "ws://") + "/graphql"
            procs = max(2, args.client_procs + args.client_procs % 2)
            pool = await ClientPool.open([ws_a, ws_b], args.subscribers, procs, district_gid, area_gid, deflate,
                                   poll_ms=args.client_poll_ms)
            meter_ab = Meter({"web A": web_a.process.pid, "web B": web_b.process.pid, **base_pids, **pool.pids},
                             redis)
            half = args.subscribers // 2
            log(f"phase 4: latency, posts to web B, {half} subscribers on each of web A and web B, "
                f"{args.posts} posts at {args.rate:g} Hz")
            cross = await measure_latency(f"4. cross process (posts to web B; subscribers: {half} on web A, "
                                          f"{args.subscribers - half} on web B; A hears through Redis)",
                                          ["web A", "web B"], [web_a.url, web_b.url], web_b.url, pool,
                                          fixture.latency_key,
                                          fixture.latency_area, args.posts, args.rate, 200_000, meter_ab, log)
            result["latency_cross"] = cross
            log(f"  received {cross.received}/{cross.expected}")
            await pool.close()
            pool = None
        if args.profile:
            profile_out = var_dir / "web-profile.prof"
            web_p = spawn_server("graphql", env, var_dir, profile_out)
            children.append(web_p)
            await wait_ready(web_p)
            log(f"phase 5: latency with web P (pid {web_p.process.pid}) under cProfile, posts and subscribers on it")
            pool = await ClientPool.open([web_p.url.replace("http://", "ws://") + "/graphql"], args.subscribers,
                                         args.client_procs, district_gid, area_gid, deflate,
                                   poll_ms=args.client_poll_ms)
            web_p.process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.2)
            meter_p = Meter({"web P": web_p.process.pid, **base_pids, **pool.pids}, redis)
            profiled = await measure_latency("5. same process, web P under cProfile (slower: do not compare)",
                                             ["web P"], [web_p.url], web_p.url, pool, fixture.latency_key,
                                             fixture.latency_area,
                                             args.posts, args.rate, 300_000, meter_p, log)
            await pool.close()
            pool = None
            web_p.stop()
            if not profile_out.exists():
                raise RuntimeError(f"the profiled server wrote no stats; see {web_p.log}")
            result["profile"] = summarize_profile(profile_out, args.posts + 1, profiled.window.cpu["web P"], top=25)
            result["profile_run"] = profiled
        result["loadavg_end"] = os.getloadavg()
        result["fixture"] = fixture
        return result
    finally:
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()
        for child in reversed(children):
            with contextlib.suppress(Exception):
                child.stop()


# ---------------------------------------------------------------------------- report


def ms(values: list[float], q: float) -> str:
    return f"{percentile(sorted(values), q) * 1000:.1f}" if values else "n/a"


def render_ingest(title: str, r: IngestRun, batch: int, posters: int, subscribers: int = 0) -> list[str]:
    w = r.window
    if w is None:
        return [f"{title}: no window"]
    server_cpu = sum(v for k, v in w.cpu.items() if not k.startswith(("bench client", "client ")))
    rate = r.accepted / w.seconds
    lines = [
        f"{title}",
        f"  readings accepted/s       {rate:10.0f}   ({r.accepted} readings in {r.posts} POSTs of {batch} "
        f"over {w.seconds:.2f} s; {r.posts / w.seconds:.1f} POSTs/s; {posters} posters)",
        f"  POST latency p50/p99      {ms(r.latencies, 50):>10} / {ms(r.latencies, 99)} ms",
        f"  errors / rejected / dups  {r.errors} / {r.rejected} / {r.duplicates}   statuses {dict(r.statuses)}",
        "  CPU s in window (cores)   " + ", ".join(f"{k} {v:.2f} ({v / w.seconds:.2f})" for k, v in w.cpu.items()),
        f"  readings per CPU-second   web A alone: {r.accepted / w.cpu['web A']:.0f}   "
        f"web A + nx-27017 + redis: {r.accepted / server_cpu:.0f}",
        f"  web A CPU per POST        {w.cpu['web A'] / r.posts * 1000:.2f} ms "
        f"({w.cpu['web A'] / r.accepted * 1e6:.0f} µs per reading); nx-27017 {w.cpu['nx-27017'] / r.posts * 1000:.2f}"
        f" ms per POST",
        "  Redis commands per POST   " + ", ".join(f"{k} {v / r.posts:.2f}" for k, v in w.redis_calls.items()),
        f"  1-min load average at end {w.loadavg_1min:.2f}",
    ]
    if subscribers:
        published = w.redis_calls.get("publish", 0)
        lines.append(f"  updates delivered         {r.delivered} in the window = {r.delivered / w.seconds:.0f}/s, "
                     f"{r.delivered / max(1, r.posts):.1f} per POST; {published} publishes x {subscribers} "
                     f"subscribers = {published * subscribers} in the window (deliveries trail their publishes; "
                     "a feed busy or resting coalesces what arrives meanwhile to its newest state)")
    return lines


def render_latency(r: LatencyRun) -> list[str]:
    w = r.window
    missed = r.expected - r.received
    delivered = r.received - r.superseded + r.duplicates  # frames that went out (a coalesced one did not)
    web = sum(w.cpu.get(name, 0.0) for name in r.servers)
    servers = " + ".join(r.servers)
    group = max(1, math.ceil(r.posts / 5))
    lines = [
        f"live latency, {r.label}",
        f"  subscribers               {r.subscribers} (primer reading reached {r.primed})",
        f"  posts                     {r.posts} at {r.achieved_hz:.2f} Hz achieved, {r.post_failures} failed "
        "(one at a time: a POST answered late delays the next)",
        f"  received / expected       {r.received} / {r.expected}"
        + (f"   ** {missed} DELIVERIES MISSED **" if missed else "   (none missed)")
        + f"; {r.superseded} of them by a newer state (the post's own frame coalesced away)",
        f"  POST sent -> update       p50 {ms(r.latencies, 50)} ms, p99 {ms(r.latencies, 99)} ms, "
        f"max {max(r.latencies) * 1000 if r.latencies else float('nan'):.1f} ms   (all pairs)",
        f"  per post: first arrival   p50 {ms(r.first_arrival, 50)} ms; last of {r.subscribers} arrivals "
        f"p50 {ms(r.last_arrival, 50)} ms, max {ms(r.last_arrival, 100)} ms",
        "  median by posting order   " + " | ".join(
            f"{ms(r.median_by_post[i:i + group], 50)}" for i in range(0, r.posts, group))
        + f" ms (p50 of each group of {group} posts' medians: a growing backlog shows here)",
        f"  POST round trip p50 {ms(r.post_round_trip, 50)} ms, p99 {ms(r.post_round_trip, 99)} ms",
        f"  server fan-out            {r.fan_outs.count} frames fanned out; writing one to all of a process's "
        f"subscribers took {r.fan_outs.mean * 1000:.1f} ms on average, p99 <= {r.fan_outs.p99_bound * 1000:g} ms "
        "(shangquan_live_fan_out_seconds); the rest of `last of N arrivals` is the POST, Redis, the execution "
        "and the clients",
        "  CPU s in window (cores)   " + ", ".join(f"{k} {v:.2f} ({v / w.seconds:.2f})" for k, v in w.cpu.items()),
        f"  {servers} CPU{' ' * max(1, 22 - len(servers))}{web / max(1, r.posts) * 1000:.1f} ms per post = "
        f"{web / max(1, delivered) * 1e6:.1f} µs per update sent to a subscriber (all of {servers}'s CPU)",
        "  Redis commands per post   " + ", ".join(f"{k} {v / r.posts:.2f}" for k, v in w.redis_calls.items()),
    ]
    if r.duplicates or r.other_messages:
        lines.append(f"  other messages            duplicates {r.duplicates}, {dict(r.other_messages)}")
    if r.missing_by_post:
        lines.append(f"  missing per post index    {r.missing_by_post}")
    if r.ended:
        lines.append(f"  subscriptions ended       {len(r.ended)}: {Counter(r.ended).most_common(3)}")
    return lines


def render(result: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    fixture: Fixture = result["fixture"]
    commands: dict[str, tuple[float, float]] = result["mongo_commands_per_post"]
    load0, load1 = result["loadavg_start"], result["loadavg_end"]
    bar = "=" * 100
    lines = [
        "", bar, "crowd flow benchmark: POST /ingest/crowd throughput and crowdUpdates live latency", bar,
        f"command: {command}",
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}",
        f"load average (1/5/15 min): start {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
        f"end {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}  (shared machine: other jobs compete for the cores)",
        f"setup: each web server one uvicorn process, one worker (bench/serve.py graphql); in-memory nx-27017 and "
        f"redis-server in their own processes; load generator in this process, the subscribers in "
        f"{args.client_procs} client processes (bench/live_clients.py; 2 or more for phase 4, half on each web); "
        f"content: {fixture.content_note}",
        f"district {DISTRICT}: areas {', '.join(fixture.areas)}; latency readings go to {fixture.latency_area}",
        f"WebSocket permessage-deflate: {'off' if args.no_deflate else 'on (as browsers offer it)'}",
        "",
        f"MongoDB commands per POST of {args.batch} (in process, CommandListener, one POST at a time): "
        f"{sum(n for n, _ in commands.values()):g}, {sum(n * t for n, t in commands.values()):.1f} ms of round "
        "trips; each: calls x mean ms",
        "  " + ", ".join(f"{k} {n:g}x{t:.2f}" for k, (n, t) in commands.items()),
        "",
    ]
    lines += render_ingest(f"1. ingest throughput, ONE web process (web A), no subscribers, {args.duration:g} s",
                           result["ingest_alone"], args.batch, args.posters)
    lines.append("")
    lines += render_latency(result["latency_same"])
    lines.append("")
    if "latency_websockets" in result:
        lines += render_latency(result["latency_websockets"])
        lines.append("")
    lines += render_ingest(f"3. ingest throughput on web A with {args.subscribers} subscribers of the district "
                           f"connected to it, {args.duration:g} s", result["ingest_loaded"], args.batch, args.posters,
                           args.subscribers)
    if result.get("ended_after_phase3"):
        lines.append(f"  subscriptions ended      {len(result['ended_after_phase3'])}")
    if "latency_cross" in result:
        lines.append("")
        lines += render_latency(result["latency_cross"])
    profile = result.get("profile")
    if profile:
        lines.append("")
        lines += render_latency(result["profile_run"])
        lines.append(f"  profile (SIGUSR1 after the subscriptions opened; primer included, {profile['requests']} "
                     f"posts): GC {profile['gc_ms_per_request']} ms per post")
        lines.append("  share of profiled self time by area: " + ", ".join(
            f"{k} {v:.0%}" for k, v in profile["share_by_area"].items()))
        lines.append(profile["top_by_self_time"].rstrip())
    before, after = result["rss_kib"]
    lines += ["", f"subscribe: {args.subscribers} graphql-transport-ws subscriptions opened in "
              f"{result['subscribe_seconds']:.1f} s (50 at a time per client process)",
              f"idle memory: web A RSS {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with the "
              f"{args.subscribers} sockets open and subscribed = {(after - before) / max(1, args.subscribers):.1f} KiB "
              "per subscriber", bar]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Crowd flow: ingest throughput and live-update latency.")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds of each ingest phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each ingest window")
    parser.add_argument("--posters", type=int, default=4, help="concurrent ingest clients, one sensor each")
    parser.add_argument("--batch", type=int, default=100, help="readings per POST (the app takes at most 500)")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--client-procs", type=int, default=0,
                        help="processes holding the subscribers (default: one per 1,250 subscribers)")
    parser.add_argument("--posts", type=int, default=50, help="single readings posted in each latency phase")
    parser.add_argument("--rate", type=float, default=5.0, help="latency posts per second")
    parser.add_argument("--latency-area", default=None, help="area of the latency readings (default: the first)")
    parser.add_argument("--no-cross-process", action="store_true", help="skip the two-process latency phase")
    parser.add_argument("--compare-clients", action="store_true",
                        help="repeat phase 2 with the subscribers on the websockets library's client (2b)")
    parser.add_argument("--no-deflate", action="store_true", help="subscribers do not offer permessage-deflate")
    parser.add_argument("--client-poll-ms", type=float, default=0.0,
                        help="the (light) clients nap N ms between looks at their sockets instead of waiting in "
                             "epoll: the web's sends wake nobody (see above)")
    parser.add_argument("--profile", action="store_true",
                        help="finally, repeat the same-process latency phase on a web server under cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir (server logs)")
    args = parser.parse_args()
    if not 1 <= args.batch <= 500 or args.posters < 1 or args.rate <= 0 or args.posts < 1:
        parser.error("need 1 <= --batch <= 500, --posters >= 1, --posts >= 1, --rate > 0")
    if args.client_procs <= 0:
        args.client_procs = max(1, math.ceil(args.subscribers / 1250))
    command = shlex.join(["python", *sys.argv])

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    var_dir = Path(tempfile.mkdtemp(prefix="shangquan-crowd-bench-"))
    try:
        result = asyncio.run(run(args, var_dir, log))
    finally:
        if args.keep:
            log(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    print(render(result, args, command), flush=True)
    runs = [r for r in (result.get("latency_same"), result.get("latency_websockets"), result.get("latency_cross"))
            if r is not None]
    if any(r.received < r.expected for r in runs):
        sys.exit(2)  # missed deliveries are a failure, not a footnote


if __name__ == "__main__":
    main()
