"""Benchmark: the DistrictPage GraphQL read against a hand-written JSON endpoint, in one run.

    python bench/graphql_read.py [--duration 15] [--concurrency 8] [--json] [--profile 5] [--py-spy 10]

Starts an in-memory nx-27017 and a redis-server, loads content/ (or, when it is missing,
tests/fixtures/content) into database "bench", then runs two servers, each in its own
uvicorn process reading that database:

* graphql - the real app, server.asgi.create_app() configured from the environment,
  asked the DistrictPage operation (graphql/operations/DistrictPage.graphql);
* plain   - bench/plain_json_app.py, GET /district/{slug}: the same page with pymongo only.

Both answers are checked once (same merchants, offers and products, no errors).  Then an
httpx client in this process keeps a fixed number of requests in flight against each
target in turn (graphql, plain, graphql, plain: drift hits both), each run after a warm-up,
and the rounds are combined.

In the same rounds it measures the public cache against a static file of the same app process: the
PWA's persisted DistrictPage GET (a cache hit after the first), the same GET with the phone's
If-None-Match (304) and /app/style.css.  These three cost the server well under a millisecond, less
than httpx costs its client per request (~2 ms), so an httpx generator would measure itself.  They are
driven by bench/lean_http.py instead (the generator bench/load.py uses): each request is prepared once
as bytes and written on a kept-alive connection, the answer read by an asyncio Protocol, on uvloop (this
whole bench runs on it): tens of microseconds per request.  The generator's CPU per request and cores
busy are printed beside the server's for every target, and the run says whether the server was the
bottleneck (its process near a full core, the generator well below it); a ratio from a run where it was
not is marked as such.  MongoDB commands per request are counted separately, in
process, with a pymongo CommandListener on each app's client.  --profile N runs the
GraphQL server once more under cProfile for N seconds of the same load and prints where
its time goes; --py-spy N samples it from outside with py-spy instead, N seconds under the cached GET
and N under the static file, so the two can be compared function by function.

Prints requests/s, p50 and p99 latency, MongoDB commands per request and errors for each,
the throughput ratio GraphQL/plain and whether it meets the goal (at least 1/6).  Also: each
MongoDB command of one request replayed alone (its cost to the database, without the queueing
that commands sent together add) and the CPU per request of the server, nx-27017 and the load
generator, sampled from /proc over the measured windows.

The plain endpoint reads what the brief for it lists (district, areas, merchants, offers,
products); DistrictPage also asks for totalCount, the current festivals and category names,
which cost the GraphQL side three more commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import platform
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
import uvloop
from lean_http import HttpFailure, LeanClient  # bench/ is sys.path[0] when run as a script
from plain_json_app import create_app as create_plain_app
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent
from starlette.applications import Starlette

from server.api.ids import from_global, to_global
from server.asgi import create_app
from server.content.loader import load_content
from server.plumbing.persisted import digest
from server.services import embedded, mongo
from server.settings import ROOT, Settings

BENCH_DIR = Path(__file__).resolve().parent
# Every simulated client comes from 127.0.0.1: per-client limits would measure the limiter, not the app.
NO_RATE_LIMITS = {"RATE_LIMIT_GRAPHQL_COST": "0", "RATE_LIMIT_REQUESTS": "0", "RATE_LIMIT_INGEST_BATCHES": "0"}
DB_NAME = "bench"
GOAL_RATIO = 1 / 6
IGNORED_COMMANDS = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions"})
SESSION_FIELDS = frozenset({"lsid", "$db", "$readPreference", "$clusterTime", "txnNumber"})
OPERATION = ROOT / "graphql" / "operations" / "DistrictPage.graphql"

Doc = dict[str, Any]


# ---------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """One measured run of one target: successful latencies in seconds, errors, window length."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    completed: int = 0  # every answer, warm-up and stragglers included
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per process, inside the window

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


@dataclass
class TargetReport:
    name: str
    url: str
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int
    mongo_commands_per_request: float
    mongo_commands: dict[str, float]
    mongo_ms_replayed: dict[str, float]  # each command of one request run alone: its cost to the database
    rounds_requests_per_s: list[float]
    cpu_ms_per_request: dict[str, float]
    cpu_cores_busy: dict[str, float]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def combine(name: str, url: str, runs: list[RunResult], commands: tuple[float, dict[str, float]],
            replayed: dict[str, float]) -> TargetReport:
    latencies = sorted(x for r in runs for x in r.latencies)
    seconds = sum(r.seconds for r in runs)
    cpu: dict[str, float] = {}
    for r in runs:
        for process, value in r.cpu_seconds.items():
            cpu[process] = cpu.get(process, 0.0) + value
    return TargetReport(
        name=name, url=url, requests=len(latencies), seconds=round(seconds, 3),
        requests_per_s=round(len(latencies) / seconds if seconds else 0.0, 1),
        p50_ms=round(percentile(latencies, 50) * 1000, 2), p99_ms=round(percentile(latencies, 99) * 1000, 2),
        mean_ms=round(sum(latencies) / len(latencies) * 1000 if latencies else float("nan"), 2),
        errors=sum(r.errors for r in runs), mongo_commands_per_request=commands[0], mongo_commands=commands[1],
        mongo_ms_replayed=replayed,
        rounds_requests_per_s=[round(r.rps, 1) for r in runs],
        cpu_ms_per_request={k: round(v / len(latencies) * 1000, 2) if latencies else 0.0 for k, v in cpu.items()},
        cpu_cores_busy={k: round(v / seconds, 2) if seconds else 0.0 for k, v in cpu.items()},
    )


# ---------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """How to ask one server for the district page and how to tell a good answer."""

    name: str
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    expect: int = 200

    def request(self, client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.request(self.method, self.path, content=self.body, headers=self.headers)

    def ok(self, response: httpx.Response) -> bool:
        if response.status_code != self.expect:
            return False
        # a GraphQL error still answers 200; a byte search is cheap enough not to load the client
        return self.body is None or b'"errors"' not in response.content


def graphql_target(district: str, first: int) -> Target:
    payload = {"operationName": "DistrictPage", "query": OPERATION.read_text(encoding="utf-8"),
               "variables": {"id": to_global("District", district), "first": first}}
    return Target("GraphQL", "POST", "/graphql", json.dumps(payload).encode(),
                  {"content-type": "application/json", "accept": "application/json"})


def cached_target(district: str, first: int, etag: str | None = None) -> Target:
    """The PWA's read: a persisted-query GET, answered from the public cache after the first time;
    with `etag`, the phone's revalidation that ends in 304."""
    extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest(OPERATION.read_text("utf-8"))}})
    variables = json.dumps({"id": to_global("District", district), "first": first, "locale": "zh-CN"})
    path = "/graphql?" + urlencode({"extensions": extensions, "variables": variables})
    if etag is None:
        return Target("cached GET", "GET", path, None, {"accept": "application/json"})
    return Target("cached 304", "GET", path, None, {"accept": "application/json", "if-none-match": etag}, 304)


STATIC_PATH = "/app/style.css"  # a shell file the same app serves from memory


def static_target() -> Target:
    return Target("static file", "GET", STATIC_PATH, None, {})


def plain_target(district: str, first: int) -> Target:
    return Target("plain JSON", "GET", f"/district/{district}?first={first}", None, {"accept": "application/json"})


# ---------------------------------------------------------------------------- load


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


async def _keep_in_flight(send: Callable[[], Awaitable[bool]], concurrency: int, warmup: float, duration: float,
                          pids: dict[str, int] | None) -> RunResult:
    """`concurrency` loops each awaiting `send()` (True: a good answer) again and again; what completes inside the
    measured window counts, and the CPU time of the processes in `pids` is sampled at its start and its end."""
    result = RunResult(seconds=duration)
    pids = pids or {}
    begin = time.perf_counter() + warmup
    end = begin + duration

    async def worker() -> None:
        while True:
            started = time.perf_counter()
            if started >= end:
                return
            good = await send()
            finished = time.perf_counter()
            result.completed += 1
            if begin <= finished < end:
                if good:
                    result.latencies.append(finished - started)
                else:
                    result.errors += 1

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        first = {name: cpu_seconds(pid) for name, pid in pids.items()}
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        result.cpu_seconds = {name: cpu_seconds(pid) - first[name] for name, pid in pids.items()}

    await asyncio.gather(sample_cpu(), *(worker() for _ in range(concurrency)))
    return result


async def drive(base_url: str, target: Target, concurrency: int, warmup: float, duration: float,
                pids: dict[str, int] | None = None) -> RunResult:
    """Keep `concurrency` requests in flight over httpx; count what completes inside the measured window."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, http1=True, http2=False, limits=limits, timeout=30) as client:

        async def send() -> bool:
            try:
                return target.ok(await target.request(client))
            except httpx.HTTPError:
                return False

        return await _keep_in_flight(send, concurrency, warmup, duration, pids)


async def drive_lean(base_url: str, target: Target, concurrency: int, warmup: float, duration: float,
                     pids: dict[str, int] | None = None) -> RunResult:
    """As `drive`, for a GET, with bench/lean_http.py: the request is bytes prepared once and each connection
    is kept alive, so the client costs tens of microseconds per request, not the ~2 ms of httpx."""
    if target.method != "GET" or target.body is not None:
        raise ValueError(f"{target.name}: the lean client sends GETs only")
    client = LeanClient(base_url, max_connections=concurrency)
    head, tail = client.request_bytes(target.path, target.headers)
    raw = head + tail
    graphql = target.path.startswith("/graphql")

    async def send() -> bool:
        try:
            answer = await client.send(raw)
        except (HttpFailure, TimeoutError):
            return False
        # a GraphQL error still answers 200; the body's bytes are searched, never parsed
        return answer.status == target.expect and not (graphql and b'"errors"' in answer.body)

    try:
        return await _keep_in_flight(send, concurrency, warmup, duration, pids)
    finally:
        client.close()


# ---------------------------------------------------------------------------- processes


@dataclass
class ServerProcess:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def spawn_server(target: str, env: dict[str, str], var_dir: Path, profile_out: Path | None = None) -> ServerProcess:
    """bench/serve.py in its own process; its output goes to a file, never to our pipes."""
    port = embedded.free_port()
    log = var_dir / f"{target}-{port}.log"
    args = [sys.executable, str(BENCH_DIR / "serve.py"), target, "--port", str(port)]
    if profile_out is not None:
        args += ["--profile-out", str(profile_out)]
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env=env, cwd=str(var_dir), start_new_session=True)
    return ServerProcess(target, f"http://127.0.0.1:{port}", process, log)


async def wait_ready(server: ServerProcess, target: Target, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    port = int(server.url.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} server exited with {server.process.returncode}; "
                               f"see {server.log}:\n{server.log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as sock:
            listening = sock.connect_ex(("127.0.0.1", port)) == 0
        if listening:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await target.request(client)
                if response.status_code == 200:
                    return
                raise RuntimeError(f"{server.name} answered {response.status_code}: {response.text[:500]}")
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} server not ready within {within_s} s; see {server.log}")


# ---------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class PageSummary:
    """What both answers must agree on: merchants in order, with their offer and product ids."""

    district: str
    merchants: list[tuple[str, str, list[str], list[str]]]  # id, zh-CN name, offer ids, product ids


def summarize_graphql(body: Doc) -> PageSummary:
    if body.get("errors"):
        raise RuntimeError(f"GraphQL answered errors: {json.dumps(body['errors'], ensure_ascii=False)[:1000]}")
    district = body["data"]["district"]
    merchants = []
    for edge in district["merchants"]["edges"]:
        node = edge["node"]
        merchants.append((from_global(node["id"])[1], node["name"],
                          [from_global(o["id"])[1] for o in node["offers"]],
                          sorted(from_global(p["id"])[1] for p in node["products"])))
    return PageSummary(district["name"], merchants)


def summarize_plain(body: Doc) -> PageSummary:
    return PageSummary(body["district"]["name"], [
        (m["id"], m["name"], [o["id"] for o in m["offers"]], sorted(p["id"] for p in m["products"]))
        for m in body["merchants"]])


async def verify(graphql_url: str, plain_url: str, gql: Target, plain: Target, expected: int) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=30) as client:
        g_resp = await client.request(gql.method, graphql_url + gql.path, content=gql.body, headers=gql.headers)
        p_resp = await client.request(plain.method, plain_url + plain.path, headers=plain.headers)
    for resp, name in ((g_resp, "GraphQL"), (p_resp, "plain")):
        if resp.status_code != 200:
            raise RuntimeError(f"{name} answered {resp.status_code}: {resp.text[:500]}")
    g_page, p_page = summarize_graphql(g_resp.json()), summarize_plain(p_resp.json())
    for page, name in ((g_page, "GraphQL"), (p_page, "plain")):
        if len(page.merchants) != expected:
            raise RuntimeError(f"{name} answered {len(page.merchants)} merchants, expected {expected}")
    if g_page != p_page:
        for a, b in zip(g_page.merchants, p_page.merchants, strict=True):
            if a != b:
                raise RuntimeError(f"the answers differ: GraphQL {a} vs plain {b}")
        raise RuntimeError(f"the answers differ: district {g_page.district!r} vs {p_page.district!r}")
    return {"merchants": expected, "offers": sum(len(m[2]) for m in g_page.merchants),
            "products": sum(len(m[3]) for m in g_page.merchants),
            "graphql_bytes": len(g_resp.content), "plain_bytes": len(p_resp.content)}


# ---------------------------------------------------------------------------- MongoDB commands


class CommandCounter(CommandListener):
    """Counts the commands a client starts while enabled (handshakes and pings aside) and keeps
    a copy of each while capturing, so they can be replayed one at a time."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self.captured: list[Doc] = []
        self.enabled = False
        self.capturing = False

    def started(self, event: CommandStartedEvent) -> None:
        if self.enabled and event.command_name not in IGNORED_COMMANDS:
            self.commands[event.command_name] += 1
            if self.capturing:
                self.captured.append({k: v for k, v in event.command.items() if k not in SESSION_FIELDS})

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


async def count_commands(app: Starlette, counter: CommandCounter, target: Target,
                         times: int = 5) -> tuple[float, dict[str, float], list[Doc]]:
    """Serve `app` with uvicorn in this process and count its MongoDB commands over `times` requests;
    also return the commands of one request."""
    port = embedded.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            response = await target.request(client)  # connections and caches warm first
            if not target.ok(response):
                raise RuntimeError(f"{target.name} in process answered {response.status_code}: {response.text[:500]}")
            counter.enabled = True
            for i in range(times):
                counter.capturing = i == 0
                response = await target.request(client)
                if not target.ok(response):
                    raise RuntimeError(f"{target.name} in process failed: {response.text[:500]}")
            counter.enabled = counter.capturing = False
    finally:
        server.should_exit = True
        await task
    per_kind = {k: round(v / times, 2) for k, v in sorted(counter.commands.items())}
    return round(sum(counter.commands.values()) / times, 2), per_kind, counter.captured


async def replay(mongo_url: str, commands: list[Doc], repeat: int = 5) -> dict[str, float]:
    """Each command of one request run alone, best of `repeat`, in ms: what it costs the database
    without the queueing that concurrent commands of the same request add to their round trips."""
    out: dict[str, float] = {}
    client: AsyncMongoClient[Doc] = mongo.connect(mongo_url)
    try:
        db = client[DB_NAME]
        await db.command("ping")
        for command in commands:
            name = next(iter(command))
            if name in {"getMore", "killCursors"}:
                continue
            label = f"{name} {command[name]}"
            while label in out:
                label += "+"
            best = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                await db.command(command)
                best = min(best, time.perf_counter() - started)
            out[label] = round(best * 1000, 2)
    finally:
        await client.close()
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------------------- profile


def _area(filename: str) -> str:
    areas = (("/strawberry/", "strawberry"), ("site-packages/graphql/", "graphql-core"), ("/pymongo/", "pymongo"),
             ("/bson/", "bson"), ("/starlette/", "starlette"), ("/uvicorn/", "uvicorn"), ("/httptools", "httptools"),
             (str(ROOT / "server"), "app (server/)"), ("/asyncio/", "asyncio"), ("/json/", "json"))
    for needle, name in areas:
        if needle in filename:
            return name
    return "builtins / C" if filename.startswith("~") else "other Python"


def summarize_profile(path: Path, requests: int, cpu_s: float, top: int = 25) -> dict[str, Any]:
    """Self time by area and the top functions; the event loop's own frame (uvloop's C loop,
    waiting included, since cProfile's clock is wall time) is left out of the shares."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = {}
    loop_s = 0.0
    for (filename, _, function), (_, _, tottime, _, _) in raw.items():
        if filename.endswith("asyncio/runners.py") and function == "run":
            loop_s += tottime
            continue
        area = _area(filename)
        by_area[area] = by_area.get(area, 0.0) + tottime
    total = sum(by_area.values())
    gc_file = path.with_name(path.name + ".gc.json")
    gc_stats = json.loads(gc_file.read_text()) if gc_file.exists() else {"seconds": [], "collections": []}
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    by_self = out.getvalue()
    out.seek(0)
    out.truncate()
    stats.sort_stats("cumulative").print_stats(top)
    return {
        "requests": requests,
        "server_cpu_ms_per_request": round(cpu_s / requests * 1000, 3) if requests else None,
        "profiled_python_ms_per_request": round(total / requests * 1000, 3) if requests else None,
        "event_loop_and_idle_s": round(loop_s, 3),
        "gc_ms_per_request": round(sum(gc_stats["seconds"]) / requests * 1000, 3) if requests else None,
        "gc_collections_by_generation": gc_stats["collections"],
        "gc_ms_by_generation": [round(x * 1000, 1) for x in gc_stats["seconds"]],
        "share_by_area": {k: round(v / total, 3) for k, v in sorted(by_area.items(), key=lambda kv: -kv[1])},
        "top_by_self_time": by_self,
        "top_by_cumulative_time": out.getvalue(),
    }


async def py_spy_under_load(server: ServerProcess, target: Target, args: argparse.Namespace, out: Path) -> str:
    """py-spy samples the running server from outside (no profiler inside it) while the lean generator keeps
    `args.concurrency` requests of `target` in flight; returns where the server's CPU went."""
    from push_fanout import py_spy_command, summarize_py_spy  # the same reader as push_fanout --py-spy

    spy = await asyncio.create_subprocess_exec(
        py_spy_command(), "record", "--pid", str(server.process.pid), "--duration", f"{args.py_spy:g}",
        "--rate", "250", "--nonblocking", "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    result = await drive_lean(server.url, target, args.concurrency, 0.5, args.py_spy)
    _, err = await spy.communicate()
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-500:]}")
    return f"{target.name}, {result.rps:.1f} req/s under py-spy:\n{summarize_py_spy(out)}"


# ---------------------------------------------------------------------------- main


@dataclass
class Setup:
    content_dir: Path
    content_note: str
    district: str
    district_note: str
    expected: int
    load_summary: str
    counts: dict[str, int]


async def prepare(mongo_url: str, district: str, first: int) -> Setup:
    content_dir = ROOT / "content"
    note = f"shipped content ({content_dir})"
    if not content_dir.is_dir():
        content_dir = ROOT / "tests" / "fixtures" / "content"
        note = f"content/ is missing: using the small test fixtures ({content_dir})"
    client: AsyncMongoClient[Doc] = mongo.connect(mongo_url)
    try:
        db = client[DB_NAME]
        await mongo.ensure_indexes(db)
        report = await load_content(db, content_dir)
        district_note = ""
        if await db.districts.find_one({"_id": district}) is None:
            per_district: Counter[str] = Counter()
            async for d in db.merchants.find({"status": "published"}, {"district_id": 1}):
                per_district[d["district_id"]] += 1
            if not per_district:
                raise RuntimeError(f"no district {district!r} and no published merchants in {content_dir}")
            fallback = per_district.most_common(1)[0][0]
            district_note = f"no district {district!r} in this content: using {fallback!r} (most merchants)"
            district = fallback
        published = await db.merchants.count_documents({"district_id": district, "status": "published"})
        expected = min(first, published)
        if expected < first:
            extra = f"only {published} published merchants in {district!r}, so pages hold {expected}, not {first}"
            district_note = f"{district_note}; {extra}" if district_note else extra
        counts = {name: await db[name].count_documents({}) for name in
                  ("districts", "areas", "merchants", "offers", "products", "festivals", "categories")}
    finally:
        await client.close()
    return Setup(content_dir, note, district, district_note, expected, report.summary(), counts)


async def run(args: argparse.Namespace, var_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    children: list[embedded.ChildService | ServerProcess] = []
    load_before = round(os.getloadavg()[0], 2)
    try:
        mongo_child = embedded.start_mongo(var_dir, in_memory=True)
        children.append(mongo_child)
        redis_child = embedded.start_redis(var_dir)
        children.append(redis_child)
        log(f"nx-27017 at {mongo_child.url}, redis at {redis_child.url}")

        setup = await prepare(mongo_child.url, args.district, args.first)
        log(f"content: {setup.content_note}")
        log(f"loaded into {DB_NAME!r}: {setup.counts}")
        if setup.district_note:
            log(f"note: {setup.district_note}")
        gql, plain = graphql_target(setup.district, args.first), plain_target(setup.district, args.first)

        env = {**os.environ, "MONGODB_URL": mongo_child.url, "REDIS_URL": redis_child.url, "MONGODB_DB": DB_NAME,
               "SHANGQUAN_CONTENT_DIR": str(setup.content_dir), "SHANGQUAN_VAR_DIR": str(var_dir), "DEBUG": "",
               **NO_RATE_LIMITS}
        g_server = spawn_server("graphql", env, var_dir)
        children.append(g_server)
        p_server = spawn_server("plain", env, var_dir)
        children.append(p_server)
        await asyncio.gather(wait_ready(g_server, gql), wait_ready(p_server, plain))
        log(f"servers: GraphQL {g_server.url} (pid {g_server.process.pid}), "
            f"plain {p_server.url} (pid {p_server.process.pid})")

        checked = await verify(g_server.url, p_server.url, gql, plain, setup.expected)
        log(f"verified: both answer {checked['merchants']} merchants, {checked['offers']} offers, "
            f"{checked['products']} product listings, no errors "
            f"(GraphQL {checked['graphql_bytes']} B, plain {checked['plain_bytes']} B)")

        # MongoDB commands per request, in process, with a listener on each app's own client
        settings = replace(Settings.from_env({}), mongodb_url=mongo_child.url, redis_url=redis_child.url,
                           mongodb_db=DB_NAME, var_dir=var_dir, content_dir=setup.content_dir,
                           rate_limit_graphql_cost=0, rate_limit_requests=0, rate_limit_ingest_batches=0)
        g_counter, p_counter = CommandCounter(), CommandCounter()
        g_total, g_kinds, g_captured = await count_commands(
            create_app(settings, mongo_listeners=[g_counter]), g_counter, gql)
        p_total, p_kinds, p_captured = await count_commands(
            create_plain_app(mongo_child.url, DB_NAME, [p_counter]), p_counter, plain)
        g_replayed, p_replayed = await replay(mongo_child.url, g_captured), await replay(mongo_child.url, p_captured)
        log(f"MongoDB commands per request: GraphQL {g_kinds}, plain {p_kinds}")
        log(f"replayed alone, ms: GraphQL {g_replayed}, plain {p_replayed}")

        # The public cache, in the same run: the PWA's GET (a hit after the first), its 304 revalidation, and a
        # static file from the same app process as the baseline they are measured against.
        cached = cached_target(setup.district, args.first)
        async with httpx.AsyncClient(base_url=g_server.url, timeout=30) as client:
            first_answer = await cached.request(client)
            second_answer = await cached.request(client)
        if second_answer.headers.get("x-cache") != "hit" or second_answer.content != first_answer.content:
            raise RuntimeError(f"the DistrictPage GET was not answered from the cache: {second_answer.headers}")
        not_modified, static = cached_target(setup.district, args.first, first_answer.headers["etag"]), static_target()
        runs: dict[str, list[RunResult]] = {"graphql": [], "plain": [], "cached": [], "not_modified": [],
                                            "static": []}
        plan = [("graphql", g_server, gql), ("plain", p_server, plain), ("cached", g_server, cached),
                ("not_modified", g_server, not_modified), ("static", g_server, static)]
        for round_no in range(1, args.rounds + 1):
            for key, server, target in plan:
                pids = {"server": server.process.pid, "nx-27017": mongo_child.process.pid,
                        "redis": redis_child.process.pid, "load generator": os.getpid()}
                driver = drive if key in ("graphql", "plain") else drive_lean  # see the module's doc
                result = await driver(server.url, target, args.concurrency, args.warmup, args.duration, pids)
                runs[key].append(result)
                log(f"round {round_no} {target.name}: {result.rps:.1f} req/s, {result.errors} errors")

        g_report = combine("GraphQL", g_server.url + gql.path, runs["graphql"], (g_total, g_kinds), g_replayed)
        p_report = combine("plain JSON", p_server.url + plain.path, runs["plain"], (p_total, p_kinds), p_replayed)
        extra = {key: asdict(combine(target.name, g_server.url + target.path[:60], runs[key], (0.0, {}), {}))
                 for key, target in (("cached", cached), ("not_modified", not_modified), ("static", static))}
        sampled: dict[str, str] = {}
        for key, target in (("cached", cached), ("static", static)) if args.py_spy > 0 else ():
            sampled[key] = await py_spy_under_load(g_server, target, args, var_dir / f"py-spy-{key}.txt")
        for server in (g_server, p_server):
            server.stop()

        profile: dict[str, Any] | None = None
        if args.profile > 0:
            profile_out = var_dir / "graphql.prof"
            prof_server = spawn_server("graphql", env, var_dir, profile_out)
            children.append(prof_server)
            await wait_ready(prof_server, gql)
            profiled = cached if args.profile_read == "cached" else gql
            profile_driver = drive_lean if args.profile_read == "cached" else drive
            await profile_driver(prof_server.url, profiled, args.concurrency, 0.0, args.warmup)  # warm, unprofiled
            prof_server.process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.2)
            cpu_before = cpu_seconds(prof_server.process.pid)
            result = await profile_driver(prof_server.url, profiled, args.concurrency, 0.0, args.profile)
            cpu_used = cpu_seconds(prof_server.process.pid) - cpu_before
            prof_server.stop()
            if prof_server.process.returncode != 0 or not profile_out.exists():
                raise RuntimeError(f"the profiled server did not write its stats; see {prof_server.log}")
            profile = summarize_profile(profile_out, result.completed, cpu_used)
            profile["requests_per_s_under_profiler"] = round(result.rps, 1)

        ratio = g_report.requests_per_s / p_report.requests_per_s if p_report.requests_per_s else 0.0
        return {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "loadavg_1min_before": load_before, "loadavg_1min_after": round(os.getloadavg()[0], 2)},
            "config": {"duration_s": args.duration, "warmup_s": args.warmup, "rounds": args.rounds,
                       "concurrency": args.concurrency, "first": args.first, "district": setup.district,
                       "content_dir": str(setup.content_dir), "content_note": setup.content_note,
                       "district_note": setup.district_note, "collections": setup.counts},
            "page": checked,
            "graphql": asdict(g_report),
            "plain": asdict(p_report),
            "ratio": round(ratio, 3),
            **extra,
            "cached_vs_static": round(extra["cached"]["requests_per_s"] / extra["static"]["requests_per_s"], 3),
            "not_modified_vs_cached": round(extra["not_modified"]["requests_per_s"]
                                            / extra["cached"]["requests_per_s"], 3),
            "not_modified_vs_static": round(extra["not_modified"]["requests_per_s"]
                                            / extra["static"]["requests_per_s"], 3),
            "cached_vs_uncached": round(extra["cached"]["requests_per_s"] / g_report.requests_per_s, 2),
            "server_bound": {key: server_bound(extra[key]) for key in ("cached", "not_modified", "static")},
            "goal_ratio": round(GOAL_RATIO, 3),
            "goal_met": ratio >= GOAL_RATIO,
            "profile": profile,
            "py_spy": sampled,
        }
    finally:
        for child in reversed(children):
            with contextlib.suppress(Exception):
                child.stop()


def server_bound(report: dict[str, Any]) -> bool:
    """Whether the server process, not the load generator, set a lean-driven target's req/s: the server near a
    full core (it is one Python process) and the generator at a small share of the server's CPU per request."""
    cpu, busy = report["cpu_ms_per_request"], report["cpu_cores_busy"]
    return bool(busy.get("server", 0.0) >= 0.85
                and cpu.get("load generator", 0.0) <= cpu.get("server", 0.0) / 3)


def render(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [
        "",
        f"DistrictPage read: district {cfg['district']!r}, first={cfg['first']}, concurrency {cfg['concurrency']}, "
        f"{cfg['rounds']} rounds x {cfg['duration_s']:g} s per target (after {cfg['warmup_s']:g} s warm-up each)",
        f"content: {cfg['content_note']}",
    ]
    if cfg["district_note"]:
        lines.append(f"note: {cfg['district_note']}")
    page = result["page"]
    lines.append(f"page: {page['merchants']} merchants, {page['offers']} offers, {page['products']} product listings; "
                 f"response {page['graphql_bytes']} B (GraphQL) / {page['plain_bytes']} B (plain)")
    m = result["machine"]
    lines.append(f"machine: {m['cpus']} CPUs, Python {m['python']}, 1-min load average {m['loadavg_1min_before']} "
                 f"before, {m['loadavg_1min_after']} after; load generator in the bench process (httpx for "
                 "GraphQL and plain JSON, bench/lean_http.py for the cached GET, the 304 and the static file), "
                 "each server in its own uvicorn process, nx-27017 and redis-server in theirs")
    lines.append("")
    header = f"{'target':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'Mongo cmds/req':>16}" \
             f"{'errors':>8}{'requests':>10}   per round req/s"
    lines.append(header)
    lines.append("-" * len(header))
    for key in ("graphql", "plain", "cached", "not_modified", "static"):
        r = result[key]
        lines.append(f"{r['name']:<12}{r['requests_per_s']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
                     f"{r['mean_ms']:>10.2f}{r['mongo_commands_per_request']:>16g}{r['errors']:>8}"
                     f"{r['requests']:>10}   {', '.join(f'{x:g}' for x in r['rounds_requests_per_s'])}")
    lines.append("")
    for key in ("graphql", "plain"):
        r = result[key]
        lines.append(f"{r['name']} MongoDB commands per request: "
                     + ", ".join(f"{k} {v:g}" for k, v in r["mongo_commands"].items()))
        lines.append(f"  each replayed alone, ms ({sum(r['mongo_ms_replayed'].values()):.1f} in all): "
                     + ", ".join(f"{k} {v:g}" for k, v in r["mongo_ms_replayed"].items()))
    lines.append("(DistrictPage also asks totalCount, current festivals and category names, which the plain "
                 "endpoint does not read: 3 of GraphQL's commands)")
    lines.append("")
    # the server's CPU per request is what a busy shared machine disturbs least: compare the cached reads by it too
    lines.append("CPU per request in the measured windows, ms (cores busy):")
    for key in ("graphql", "plain", "cached", "not_modified", "static"):
        r = result[key]
        lines.append(f"  {r['name']:<12}" + ", ".join(
            f"{k} {v:g} ({r['cpu_cores_busy'][k]:g})" for k, v in r["cpu_ms_per_request"].items()))
    lines.append("")
    bound = result["server_bound"]
    lines.append("server the bottleneck (server ≥ 0.85 cores busy, generator ≤ 1/3 of its CPU per request): "
                 + ", ".join(f"{result[k]['name']} {'yes' if bound[k] else 'NO'}" for k in bound))
    by_cpu = {k: result[k]["cpu_ms_per_request"].get("server", 0.0) for k in bound}
    if all(by_cpu.values()):
        # the throughput a saturated server would give, from its CPU per request (other jobs disturb it least)
        lines.append(f"the same ratios from the server's CPU per request: cached / static "
                     f"{by_cpu['static'] / by_cpu['cached']:.3f}, 304 / cached "
                     f"{by_cpu['cached'] / by_cpu['not_modified']:.3f}")
    lines.append("")
    lines.append(f"throughput ratio GraphQL / plain JSON: {result['ratio']:.3f}")
    lines.append(f"public cache: cached GET / static file {result['cached_vs_static']:.3f} (goal ≥ 0.7: "
                 f"{'MET' if result['cached_vs_static'] >= 0.7 else 'NOT MET'}); 304 / cached GET "
                 f"{result['not_modified_vs_cached']:.3f} (goal ≥ 1: "
                 f"{'MET' if result['not_modified_vs_cached'] >= 1 else 'NOT MET'}); 304 / static file "
                 f"{result['not_modified_vs_static']:.3f}; cached / uncached POST "
                 f"{result['cached_vs_uncached']:g}x"
                 + ("" if all(bound.values()) else " (NOT server-bound in every run: see above)"))
    lines.append(f"goal: GraphQL ≥ 1/6 of plain JSON throughput (ratio ≥ 0.167): "
                 f"{'MET' if result['goal_met'] else 'NOT MET'}")
    for text in result.get("py_spy", {}).values():
        lines += ["", "py-spy on the GraphQL server (own time by function, then time inside it): " + text]
    profile = result.get("profile")
    if profile:
        lines.append("")
        lines.append(f"GraphQL server under cProfile (switched on after warm-up): {profile['requests']} requests, "
                     f"{profile['server_cpu_ms_per_request']} ms server CPU per request with the profiler on, "
                     f"{profile['profiled_python_ms_per_request']} ms of it in profiled functions "
                     f"({profile['requests_per_s_under_profiler']} req/s)")
        lines.append(f"garbage collector: {profile['gc_ms_per_request']} ms per request; collections by generation "
                     f"{profile['gc_collections_by_generation']} took {profile['gc_ms_by_generation']} ms")
        lines.append("share of profiled self time by area (event loop frame left out): " + ", ".join(
            f"{k} {v:.0%}" for k, v in profile["share_by_area"].items()))
        lines.append(profile["top_by_self_time"])
        lines.append(profile["top_by_cumulative_time"])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="DistrictPage: GraphQL vs a plain JSON endpoint, same data.")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per target and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (GraphQL, plain)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--first", type=int, default=20, help="merchants per page")
    parser.add_argument("--district", default="luohu-golden-triangle")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="afterwards, profile the GraphQL server under this load for SECONDS")
    parser.add_argument("--profile-read", choices=("uncached", "cached"), default="uncached",
                        help="what --profile sends: the uncached POST or the cached GET (a public-cache hit)")
    parser.add_argument("--py-spy", type=float, default=0.0, metavar="SECONDS",
                        help="afterwards, sample the GraphQL server with py-spy (pip install py-spy) for SECONDS "
                             "under the cached GET, then under the static file, and print where its CPU goes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir (logs)")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    var_dir = Path(tempfile.mkdtemp(prefix="shangquan-bench-"))
    try:
        result = uvloop.run(run(args, var_dir, log))
    finally:
        if args.keep:
            log(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(render(result))


if __name__ == "__main__":
    main()
