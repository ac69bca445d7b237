"""Benchmark: what shopper reads cost as the city's content grows, in one run.

    python bench/content_scale.py [--sizes 162,5000,50000] [--reps 7] [--budget 40] [--mongo-url URL] [--json]
                                  [--load-only]

For each size, content in the project's own format (content/ layout, YAML) is generated: the
seed merchants plus synthetic ones, spread over the districts in the seed's proportions, with
Chinese names, each inside its district's boundary, and 0.5 active offers per synthetic
merchant.  Generation is seeded, so a size is the same content on every run of the same day
(offer validity is relative to that day).  Each size is then:

* loaded through the real loader (server.content.loader.load_content) into a fresh database
  on a fresh on-disk nx-27017 (or --mongo-url), timed;
* "restarted": the real app (server.asgi.create_app) starts over the loaded data; the time
  until it serves is the restart time;
* asked the requests below by one client, sequentially: median and p90 in ms, the CPU time per
  request of the app, the client and the embedded server together (the mean over the repetitions;
  other programs on the machine change it far less than wall time), and the MongoDB commands per
  request, counted by a pymongo CommandListener on the app's client.

A request repeats --reps times, or fewer when it would exceed --budget seconds (slow baselines
at 50,000).  The growth columns are median(largest size) / median(smallest size), and the same for CPU.  Timing is
wall clock on a shared machine: the load average is printed beside the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from opencc import OpenCC
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from server.api.ids import to_global
from server.asgi import create_app
from server.content.loader import load_content
from server.domain.geo import Point, point_in_polygon
from server.services import embedded, mongo
from server.settings import ROOT, Settings

Doc = dict[str, Any]
SEED_CONTENT = ROOT / "content"
OPERATIONS = ROOT / "graphql" / "operations"
IGNORED = frozenset({"hello", "isMaster", "ismaster", "ping", "endSessions"})
DISTRICT = "huaqiangbei"
Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BRANDS = ["鑫盛", "华芯", "粤海", "鹏城", "万利", "恒通", "新港", "金辉", "宏达", "瑞丰", "东来", "嘉禾", "明珠",
          "福田", "星河", "汇鑫", "创维", "南山", "海岸", "天虹", "益民", "永兴", "兴隆", "富华", "佳源", "百盛"]
SUFFIXES = ["", "分店", "旗舰店", "体验店", "专营店", "二店", "三店", "精品店"]


class Commands(CommandListener):
    def __init__(self) -> None:
        self.count = 0
        self.kinds: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name not in IGNORED:
            self.count += 1
            self.kinds[event.command_name] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


# ---------------------------------------------------------------------------- content


def _read(path: Path, key: str) -> list[Doc]:
    data: list[Doc] = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)[key]
    return data


def _random_point(rng: random.Random, ring: list[list[float]]) -> tuple[float, float]:
    lngs, lats = [p[0] for p in ring], [p[1] for p in ring]
    while True:
        # rounded before the check: the loader validates the rounded point (a point on the edge may
        # round to outside)
        lat, lng = round(rng.uniform(min(lats), max(lats)), 6), round(rng.uniform(min(lngs), max(lngs)), 6)
        if point_in_polygon(Point(lat, lng), ring):
            return lat, lng


def generate(size: int, seed: int, out: Path, today: datetime) -> Path:
    """The seed content plus synthetic merchants up to `size`, in the seed's district proportions."""
    target = out / f"content-{size}-{seed}-{today:%Y%m%d}"
    if (target / "done").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(SEED_CONTENT, target)
    rng = random.Random(seed)
    hk = OpenCC("s2hk")
    districts = {d["id"]: d for d in _read(SEED_CONTENT / "districts.yaml", "districts")}
    seed_merchants = {p.stem: _read(p, "merchants") for p in sorted((SEED_CONTENT / "merchants").glob("*.yaml"))}
    total_seed = sum(len(v) for v in seed_merchants.values())
    extra = max(0, size - total_seed)
    names = sorted(seed_merchants)
    weights = [len(seed_merchants[n]) for n in names]
    per_district = Counter(rng.choices(names, weights, k=extra))
    offers = _read(SEED_CONTENT / "offers.yaml", "offers")
    number = 0
    for district_id in names:
        merchants = list(seed_merchants[district_id])
        ring = districts[district_id]["boundary"]
        for _ in range(per_district[district_id]):
            number += 1
            template = rng.choice(seed_merchants[district_id])
            brand, suffix = rng.choice(BRANDS), rng.choice(SUFFIXES)
            zh = f"{brand}{template['name']['zh-CN']}{suffix}"
            lat, lng = _random_point(rng, ring)
            mid = f"{district_id[:12]}-g{number:06d}"
            merchant = {**template, "id": mid, "location": {"lat": lat, "lng": lng},
                        "name": {"zh-CN": zh, "zh-HK": hk.convert(zh), "en": f"{template['name']['en']} #{number}"},
                        "phone": f"+86 755 {rng.randint(2000, 8999)} {rng.randint(1000, 9999)}"}
            merchant.pop("hours_exceptions", None)
            merchants.append(merchant)
            if rng.random() < 0.5:
                starts = today - timedelta(days=rng.randint(1, 20))
                offers.append({
                    "id": f"{mid}-offer", "merchant": mid,
                    "title": {"zh-CN": f"{brand}店庆满100减{rng.randint(5, 30)}", "en": "Store anniversary"},
                    "kind": "amount_off", "amount_off_fen": rng.randint(5, 30) * 100, "min_spend_fen": 10000,
                    "valid_from": starts.isoformat(),
                    "valid_until": (today + timedelta(days=rng.randint(1, 90), hours=rng.randint(0, 23))).isoformat(),
                })
        text = yaml.dump({"merchants": merchants}, Dumper=Dumper, allow_unicode=True, sort_keys=False)
        (target / "merchants" / f"{district_id}.yaml").write_text(text, encoding="utf-8")
    (target / "offers.yaml").write_text(yaml.dump({"offers": offers}, Dumper=Dumper, allow_unicode=True,
                                                  sort_keys=False), encoding="utf-8")
    (target / "done").write_text("ok")
    return target


# ---------------------------------------------------------------------------- requests


def _op(name: str, variables: Doc) -> Doc:
    return {"operationName": name, "query": (OPERATIONS / f"{name}.graphql").read_text(encoding="utf-8"),
            "variables": variables}


def requests_to_measure() -> dict[str, Doc]:
    district = to_global("District", DISTRICT)
    center = {"lat": 22.5445, "lng": 114.0830}  # 华强北路 at 赛格广场
    return {
        "DistrictPage (华强北)": _op("DistrictPage", {"id": district, "first": 20}),
        "search 手机": _op("Search", {"query": "手机"}),
        "search hqb": _op("Search", {"query": "hqb"}),
        "near 500 m, first 20": _op("Merchants", {"filter": {"near": {**center, "radiusMeters": 500}}, "first": 20}),
        "near 2 km, first 20": _op("Merchants", {"filter": {"near": {**center, "radiusMeters": 2000}}, "first": 20}),
        "district, openNow, first 20": _op("Merchants", {"filter": {"districtId": district, "openNow": True},
                                                         "first": 20}),
        "district, first 20": _op("Merchants", {"filter": {"districtId": district}, "first": 20}),
        "Home": _op("Home", {}),
    }


def _cpu_s(db_pid: int | None) -> float:
    """CPU seconds used so far by this process (the app and the client) and by the database server: unlike
    wall time, hardly changed by other programs sharing the cores.  Finished child processes count too (the
    loader reads large merchant files in worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = time.process_time() + children.ru_utime + children.ru_stime
    if db_pid is not None:
        fields = Path(f"/proc/{db_pid}/stat").read_text().rsplit(")", 1)[1].split()
        used += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return used


async def measure(url: str, counter: Commands, body: Doc, reps: int, budget_s: float,
                  db_pid: int | None = None) -> Doc:
    times: list[float] = []
    commands: list[int] = []
    cpu_spent = 0.0
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        spent = 0.0
        for i in range(reps + 1):
            before = counter.count
            cpu_before = _cpu_s(db_pid)
            started = time.perf_counter()
            response = await client.post("/graphql", json=body, headers={"accept": "application/json"})
            elapsed = time.perf_counter() - started
            payload = response.json()
            if response.status_code != 200 or payload.get("errors"):
                raise RuntimeError(f"{body['operationName']} failed: {response.text[:400]}")
            spent += elapsed
            if i > 0:  # the first one warms connections and caches
                times.append(elapsed * 1000)
                commands.append(counter.count - before)
                cpu_spent += _cpu_s(db_pid) - cpu_before
            if spent > budget_s and len(times) >= 1:
                break
    times.sort()
    return {"median_ms": round(statistics.median(times), 1),
            "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 1),
            "cpu_ms": round(cpu_spent * 1000 / len(times), 1),
            "commands": round(statistics.mean(commands), 1), "n": len(times)}


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str, float]:
    port = embedded.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    started = time.perf_counter()
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}", time.perf_counter() - started


async def run_size(size: int, args: argparse.Namespace, work: Path, today: datetime) -> Doc:
    content = generate(size, args.seed, work, today)
    var = Path(tempfile.mkdtemp(prefix=f"scale-{size}-", dir=work))
    child = None
    mongo_url = args.mongo_url
    if not mongo_url:
        child = embedded.start_mongo(var)
        mongo_url = child.url
    db_name = f"scale_{size}"
    result: Doc = {"size": size}
    try:
        client = mongo.connect(mongo_url)
        db = client[db_name]
        await client.drop_database(db_name)
        await mongo.ensure_indexes(db)
        merchants_total = 0
        db_pid = child.process.pid if child and child.process else None
        started, cpu_before = time.perf_counter(), _cpu_s(db_pid)
        report = await load_content(db, content)
        result["load_s"] = round(time.perf_counter() - started, 1)
        result["load_cpu_s"] = round(_cpu_s(db_pid) - cpu_before, 1)
        # this process's peak memory so far: the loader's, and the generation's when it ran in this run (a first
        # run of the day): the table says so
        result["load_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        merchants_total = await db.merchants.estimated_document_count()
        result["merchants"] = merchants_total
        result["offers"] = await db.offers.estimated_document_count()
        result["load_summary"] = report.summary()
        await client.close()
        if args.load_only:
            return result
        env = {**os.environ, "MONGODB_URL": mongo_url, "MONGODB_DB": db_name, "SHANGQUAN_CONTENT_DIR": str(content),
               "RATE_LIMIT_GRAPHQL_COST": "0", "RATE_LIMIT_REQUESTS": "0", "RATE_LIMIT_INGEST_BATCHES": "0",
               "SHANGQUAN_VAR_DIR": str(var)}
        if args.redis_url:
            env["REDIS_URL"] = args.redis_url
        counter = Commands()
        app = create_app(Settings.from_env(env), mongo_listeners=[counter])
        server, task, url, restart_s = await serve(app)
        result["restart_s"] = round(restart_s, 1)
        try:
            result["requests"] = {}
            for label, body in requests_to_measure().items():
                result["requests"][label] = await measure(url, counter, body, args.reps, args.budget,
                                                          db_pid)
                print(f"  {size:>6} {label}: {result['requests'][label]}", file=sys.stderr, flush=True)
        finally:
            server.should_exit = True
            await task
    finally:
        if child is not None:
            child.stop()
        shutil.rmtree(var, ignore_errors=True)
    return result


def load_table(results: list[Doc]) -> str:
    lines = ["| merchants | load (s wall) | load (CPU s of loader and server) | peak RSS of this run (MB) |",
             "|---|---|---|---|"]
    lines.extend(f"| {r['merchants']:,} | {r['load_s']} | {r['load_cpu_s']} | {r['load_rss_mb']:,} |" for r in results)
    return "\n".join(lines)


def table(results: list[Doc]) -> str:
    sizes = [r["size"] for r in results]
    head = ("| request (median ms / p90 ms; CPU ms; MongoDB commands) | " + " | ".join(f"{s:,}" for s in sizes)
            + " | growth (median) | growth (CPU) |")
    lines = [head, "|" + "---|" * (len(sizes) + 3)]
    for label in results[0]["requests"]:
        first, last = results[0]["requests"][label], results[-1]["requests"][label]
        cells = [f"{r['requests'][label]['median_ms']:,} / {r['requests'][label]['p90_ms']:,}; "
                 f"{r['requests'][label]['cpu_ms']:,}; {r['requests'][label]['commands']:g}" for r in results]
        growth = last["median_ms"] / max(first["median_ms"], 0.1)
        cpu_growth = last["cpu_ms"] / max(first["cpu_ms"], 0.1)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {growth:.1f}× | {cpu_growth:.1f}× |")
    lines.append("| load (s wall; CPU s of loader and server) | "
                 + " | ".join(f"{r['load_s']}; {r['load_cpu_s']}" for r in results) + " | | |")
    lines.append("| restart, content unchanged (s) | " + " | ".join(f"{r['restart_s']}" for r in results) + " | | |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="162,5000,50000")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--budget", type=float, default=40.0, help="seconds per request and size, at most")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--mongo-url", default=os.environ.get("BENCH_MONGODB_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "shangquan-content-scale"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="time the loads only (no restart, no requests)")
    args = parser.parse_args()
    work = Path(args.work_dir)
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    load_before = os.getloadavg()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        results.append(await run_size(size, args, work, today))
    load_after = os.getloadavg()
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"backend: {'MongoDB at ' + args.mongo_url if args.mongo_url else 'embedded nx-27017 (on disk)'}; "
          f"now {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load_before[0]:.2f} → {load_after[0]:.2f}")
    print(load_table(results) if args.load_only else table(results))


if __name__ == "__main__":
    asyncio.run(main())
