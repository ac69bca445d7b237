"""Benchmark: what a public-cache miss of each read of bench/load.py's mix costs, against its hit, in one run.

    python bench/miss_cost.py [--n 60] [--py-spy] [--only near,district]

Starts an in-memory nx-27017 and a redis-server, loads content/ as bench/load.py does (its `prepare`: the
same seed content, accounts, sensors and inbox campaigns) and runs the web app as the Procfile does
(bench/serve.py asgi, JSON access log).  Then, for each persisted read of the mix, one client asks `--n`
reads one after the other that each miss the cache as they do in load.py's phase 2:

* DistrictScreen and MerchantPage after their district's or merchant's tag got a new version (as the
  operator's offer edit does; the rest of the cache, and the process's memos, stay warm), in each locale;
* Search with a word no earlier read asked (a new key: an entry that reached its cap);
* Merchants near a grid point no earlier read asked from (5 km, first 20, as the PWA asks: "near");
* the same at points asked once before, after an offer edit of the answer's first shop ("near-edit": its tag
  and OFFERS bumped, as the operator's edit does: most of phase 2's near-me misses);
* Inbox after a campaign was stored (its tag bumped).

and then the same number of hits (one key asked again).  Printed per read: web CPU per miss and per hit (ms,
from /proc), nx-27017's and Redis's CPU per miss, and the MongoDB commands per miss by name (the app's own
command metrics, read from /metrics before and after).  --py-spy samples the web process during each read's
misses (`pip install py-spy`) and prints where its time went: wall-clock samples, so on a loaded machine a
process woken by its own write to loopback is sampled while it waits for the CPU (MongoDB's writes look
large); --profile READ runs cProfile inside the web process during that read's misses instead.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import redis.asyncio as aioredis
import uvloop
from crowd_live import wait_ready  # bench/ is sys.path[0] when run as a script
from graphql_read import cpu_seconds, spawn_server
from load import DB_NAME, GRID, LOCALES, NEAR_RADIUS_M, PAGE, TOPICS, Catalog, prepare

from server.api.ids import key_of
from server.domain import freshness
from server.services import embedded, mongo
from server.settings import ROOT

Doc = dict[str, Any]
METRIC = re.compile(r'^shangquan_mongodb_command_duration_seconds_count\{command="([^"]+)"\} ([0-9.e+]+)$')
TAGS_KEY = f"sq:pc:{DB_NAME}:tags"
CONTENT = ROOT / "content"


@dataclass
class Cost:
    name: str
    misses: int = 0
    not_missed: int = 0  # asked to miss, answered otherwise (a bug in this bench)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per miss, by process
    hit_cpu_ms: float = 0.0  # web, per hit
    commands: dict[str, float] = field(default_factory=dict)  # per miss
    bytes: int = 0  # mean answer size
    profile: str = ""


async def mongo_commands(client: httpx.AsyncClient) -> Counter[str]:
    text = (await client.get("/metrics")).text
    found: Counter[str] = Counter()
    for line in text.splitlines():
        if m := METRIC.match(line):
            found[m.group(1)] = int(float(m.group(2)))
    return found


def persisted(catalog: Catalog, name: str, variables: Doc, locale: str = "zh-CN") -> str:
    extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": catalog.hashes[name]}},
                            separators=(",", ":"))
    return "/graphql?" + urlencode({"extensions": extensions, "variables": json.dumps(
        {**variables, "locale": locale}, ensure_ascii=False, separators=(",", ":"))})


Bump = Callable[[], Coroutine[Any, Any, None]]


def reads(catalog: Catalog, words: list[str], rng: random.Random, n: int, redis: aioredis.Redis
          ) -> dict[str, list[tuple[str, Bump | None]]]:
    """Per read: n (URL, what to bump before asking it) pairs, each a miss when asked in order."""

    def bump(tag: str) -> Bump:
        async def run() -> None:
            await redis.hset(TAGS_KEY, tag, os.urandom(8).hex())
        return run

    out: dict[str, list[tuple[str, Bump | None]]] = {}
    # as after an edit: the tag bumped once, then the same read in each locale (one boundary lookup per edit)
    out["district"] = [(persisted(catalog, "DistrictScreen", {"id": catalog.district_gid(d)}, loc),
                        bump(freshness.district(d)) if i % 3 == 0 else None)
                       for i in range(n) for d, loc in [(catalog.districts[i // 3 % len(catalog.districts)],
                                                         LOCALES[i % 3])]]
    merchants = rng.sample(catalog.merchants, min(n, len(catalog.merchants)))
    out["merchant"] = [(persisted(catalog, "MerchantPage", {"id": m}, LOCALES[i % 3]),
                        bump(freshness.merchant(key_of(m, "Merchant"))) if i % 3 == 0 else None)
                       for i in range(n) for m in [merchants[i // 3 % len(merchants)]]]
    out["search"] = [(persisted(catalog, "Search", {"query": w}), None) for w in words[:n]]
    points: list[tuple[float, float]] = []
    seen: set[tuple[float, float]] = set()
    while len(points) < 2 * n:
        lat, lng = rng.choice(catalog.points)
        p = (round((lat + rng.uniform(-0.004, 0.004)) * GRID) / GRID, round((lng + rng.uniform(-0.004, 0.004)) * GRID)
             / GRID)
        if p not in seen:
            seen.add(p)
            points.append(p)
    near = [(persisted(catalog, "Merchants", {"filter": {"near": {"lat": lat, "lng": lng, "radiusMeters":
                                                                  NEAR_RADIUS_M}}, "first": PAGE}), None)
            for lat, lng in points]
    out["near"], out["near-edit"] = near[:n], near[n:]  # the second half: see after_edits
    districts = [catalog.district_gid(d) for d in catalog.districts]
    out["inbox"] = [(persisted(catalog, "Inbox", {"districts": districts, "topics": TOPICS, "first": PAGE}),
                     bump(freshness.INBOX))] * n
    return out


async def after_edits(client: httpx.AsyncClient, redis: aioredis.Redis, near: list[tuple[str, Bump | None]]
                      ) -> list[tuple[str, Bump | None]]:
    """Near me at other grid points, each asked once beforehand, then again after an offer edit of its first
    shop (that shop's tag and OFFERS bumped, as bench/load.py's operator does): phase 2's near-me misses."""
    out: list[tuple[str, Bump | None]] = []
    for url, _ in near:
        answer = (await client.get(url)).json()
        shop = answer["data"]["merchants"]["edges"][0]["node"]["id"]

        async def edit(shop: str = shop) -> None:
            token = os.urandom(8).hex()
            await redis.hset(TAGS_KEY, mapping={freshness.merchant(key_of(shop, "Merchant")): token,
                                                freshness.OFFERS: token})
        out.append((url, edit))
    return out


async def search_words(mongo_url: str, n: int) -> list[str]:
    """Two-character words of the merchants' Chinese names: searches that find something, none asked before."""
    client = mongo.connect(mongo_url)
    try:
        found = client[DB_NAME].merchants.find({}, {"name": 1})
        names = [str((d.get("name") or {}).get("zh-CN", "")) async for d in found]
    finally:
        await client.close()
    words = list(dict.fromkeys(name[i:i + 2] for name in names for i in range(0, max(0, len(name) - 1), 2)))
    random.Random(5).shuffle(words)
    return [w for w in words if w.strip() and len(w) == 2][:n]


async def measure(client: httpx.AsyncClient, pids: dict[str, int], name: str, todo: list[tuple[str, Bump | None]],
                  spy: Path | None, web_pid: int, hits: bool = True) -> Cost:
    cost = Cost(name)
    spy_process = None
    if spy is not None:
        spy_process = subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                                        "record", "--pid", str(web_pid), "--format", "raw", "--rate", "400",
                                        "--nonblocking", "--output", str(spy)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.5)
    before_cmd = await mongo_commands(client)
    before = {k: cpu_seconds(p) for k, p in pids.items()}
    sizes = 0
    for url, bump in todo:
        if bump is not None:
            await bump()
        answer = await client.get(url)
        if answer.status_code != 200 or b'"errors"' in answer.content:
            raise RuntimeError(f"{name}: HTTP {answer.status_code} {answer.text[:300]}")
        sizes += len(answer.content)
        if answer.headers.get("x-cache") == "miss":
            cost.misses += 1
        else:
            cost.not_missed += 1
    after = {k: cpu_seconds(p) for k, p in pids.items()}
    after_cmd = await mongo_commands(client)
    if spy_process is not None:
        spy_process.send_signal(2)  # SIGINT: py-spy writes what it sampled
        spy_process.wait(30)
    n = len(todo)
    cost.cpu_ms = {k: (after[k] - before[k]) * 1000 / n for k in pids}
    after_cmd.subtract(before_cmd)
    cost.commands = {k: v / n for k, v in sorted(after_cmd.items()) if v}
    cost.bytes = sizes // max(1, n)
    if not hits:
        return cost
    # hits: the last URL again, n times
    url = todo[-1][0]
    await client.get(url)
    web0 = cpu_seconds(web_pid)
    for _ in range(n):
        answer = await client.get(url)
        assert answer.headers.get("x-cache") == "hit", answer.headers
    cost.hit_cpu_ms = (cpu_seconds(web_pid) - web0) * 1000 / n
    return cost


async def run(args: argparse.Namespace, var_dir: Path) -> list[Cost]:
    children: list[Any] = []
    try:
        mongo_child = embedded.start_mongo(var_dir, in_memory=True)
        children.append(mongo_child)
        redis_url, redis_pid = args.redis_url, 0
        if not redis_url:
            redis_child = embedded.start_redis(var_dir)
            children.append(redis_child)
            redis_url, redis_pid = redis_child.url, redis_child.process.pid
        else:
            redis_pid = args.redis_pid
            async with aioredis.from_url(redis_url) as fresh:  # nothing of an earlier run answers
                keys = [k async for k in fresh.scan_iter(match=f"sq:pc:{DB_NAME}:*", count=1000)]
                if keys:
                    await fresh.delete(*keys)
        env = {**os.environ, "MONGODB_URL": mongo_child.url, "REDIS_URL": redis_url, "MONGODB_DB": DB_NAME,
               "SHANGQUAN_CONTENT_DIR": str(CONTENT),
               "SHANGQUAN_VAR_DIR": str(var_dir), "DEBUG": "", "CROWD_SIMULATOR": "", "LOG_LEVEL": "INFO",
               "LOG_FORMAT": "json", "RATE_LIMIT_GRAPHQL_COST": "0", "RATE_LIMIT_REQUESTS": "0"}
        catalog = await prepare(mongo_child.url, "", 0, lambda m: print(m, file=sys.stderr))
        words = await search_words(mongo_child.url, args.n * 2)
        profile_out = var_dir / "web.pstats" if args.profile else None
        web = spawn_server("asgi", env, var_dir, profile_out)
        children.append(web)
        await wait_ready(web)
        pids = {"web": web.process.pid, "nx-27017": mongo_child.process.pid,
                **({"redis": redis_pid} if redis_pid else {})}
        redis = aioredis.from_url(redis_url)
        rng = random.Random(13)
        costs: list[Cost] = []
        try:
            async with httpx.AsyncClient(base_url=web.url, timeout=60, trust_env=False) as client:
                warm = reads(catalog, words[args.n:], rng, 8, redis)  # the process's memos, pools, imports
                for todo in warm.values():
                    for url, bump in todo:
                        if bump is not None:
                            await bump()
                        await client.get(url)
                todo_by_read = reads(catalog, words, rng, args.n, redis)
                todo_by_read["near-edit"] = await after_edits(client, redis, todo_by_read["near-edit"])
                for name, todo in todo_by_read.items():
                    if (args.only and name not in args.only) or (args.profile and name != args.profile):
                        continue
                    if profile_out is not None:  # cProfile from here on, in the web process (bench/serve.py)
                        web.process.send_signal(signal.SIGUSR1)
                        await asyncio.sleep(0.5)
                    spy = var_dir / f"spy-{name}.txt" if args.py_spy else None
                    cost = await measure(client, pids, name, todo, spy, web.process.pid, not args.profile)
                    if spy is not None and spy.exists():
                        from push_fanout import summarize_py_spy

                        cost.profile = summarize_py_spy(spy, args.top)
                    costs.append(cost)
                    print(f"  {name}: {cost.cpu_ms['web']:.2f} ms web per miss", file=sys.stderr, flush=True)
                    if profile_out is not None:
                        web.stop()  # writes the profile
                        out = io.StringIO()
                        stats = pstats.Stats(str(profile_out), stream=out)
                        stats.sort_stats("tottime").print_stats(args.top)
                        stats.sort_stats("cumulative").print_stats(args.top * 2)
                        cost.profile = out.getvalue()
        finally:
            await redis.aclose()
        return costs
    finally:
        for child in reversed(children):
            try:
                child.stop()
            except Exception as exc:  # report, keep stopping the others
                print(f"stopping {child}: {exc}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60, help="misses (and hits) per read")
    parser.add_argument("--py-spy", action="store_true", help="sample the web process during each read's misses")
    parser.add_argument("--profile", default="", help="one read (e.g. near): cProfile the web process during "
                        "its misses, hits left out (slower; for where the time goes, not for the figures)")
    parser.add_argument("--top", type=int, default=25, help="functions per py-spy table")
    parser.add_argument("--redis-url", default="", help="a redis-server to use (default: one started here)")
    parser.add_argument("--redis-pid", type=int, default=0, help="with --redis-url: its pid, to count its CPU")
    parser.add_argument("--only", type=lambda s: s.split(","), default=[],
                        help="comma separated: district,merchant,search,near,inbox")
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    var_dir = Path(tempfile.mkdtemp(prefix="shangquan-miss-"))
    try:
        started = time.monotonic()
        costs = uvloop.run(run(args, var_dir))
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    print(f"\npublic-cache miss vs hit, one client, one request at a time ({args.n} of each); load average "
          f"{load0:.2f} -> {os.getloadavg()[0]:.2f}; {time.monotonic() - started:.0f} s")
    print(f"  {'read':<10}{'web/miss':>10}{'nx/miss':>9}{'redis':>7}{'web/hit':>9}{'miss/hit':>9}{'bytes':>8}"
          "  MongoDB commands per miss")
    for c in costs:
        ratio = c.cpu_ms["web"] / c.hit_cpu_ms if c.hit_cpu_ms else float("nan")
        commands = ", ".join(f"{k} {v:.1f}" for k, v in c.commands.items())
        redis_ms = c.cpu_ms.get("redis", float("nan"))
        print(f"  {c.name:<10}{c.cpu_ms['web']:>8.2f}ms{c.cpu_ms['nx-27017']:>7.2f}ms{redis_ms:>7.2f}"
              f"{c.hit_cpu_ms:>7.2f}ms{ratio:>9.1f}{c.bytes:>8}  {commands}"
              + (f"  ({c.not_missed} answered without a miss)" if c.not_missed else ""))
    for c in costs:
        if c.profile:
            print(f"\n{c.name}, web process during its misses (py-spy):\n{c.profile}")


if __name__ == "__main__":
    main()
