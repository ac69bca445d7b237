"""Benchmark: what one idle, subscribed live socket costs the web process, and where that memory sits.

    python bench/live_memory.py [--sockets 1000] [--warm 50] [--client-procs N] [--trace 0|N] [--ws IMPL]

Starts an in-memory nx-27017 and a redis-server with bench/crowd_live.py's fixture, one web process
(bench/serve.py graphql, with --memory-out), opens `--warm` subscriptions to crowdUpdates of one district (so
the feed, the caches and the first-use allocations exist), takes a census (SIGUSR2: RSS, objects by type,
and with --trace N a tracemalloc snapshot of N frames), opens `--sockets` more and takes another. Prints, per
added socket: RSS, Python objects by type, and with tracing the allocation sites that grew most.

RSS counts what tracemalloc cannot see (uvloop's and libuv's buffers, C structures) but tracing itself costs
memory: take the RSS figure from a run without --trace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from crowd_live import DB_NAME, DISTRICT, NO_RATE_LIMITS, ClientPool, prepare, wait_quiet, wait_ready
from graphql_read import spawn_server

from server.api.ids import to_global
from server.services import embedded


def lines_of(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


async def census(pid: int, out: Path) -> dict[str, Any]:
    seen = len(lines_of(out))
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        lines = lines_of(out)
        if len(lines) > seen:
            record: dict[str, Any] = json.loads(lines[seen])
            return record
        await asyncio.sleep(0.2)
    raise RuntimeError("no census from the web process")


def per_socket(before: dict[str, Any], after: dict[str, Any], sockets: int, top: int) -> list[str]:
    lines = [f"RSS {before['rss_kb'] / 1024:.1f} -> {after['rss_kb'] / 1024:.1f} MiB: "
             f"{(after['rss_kb'] - before['rss_kb']) * 1024 / sockets / 1000:.1f} kB per socket",
             f"gc-tracked objects: {(after['objects'] - before['objects']) / sockets:.1f} per socket"]
    grown = {k: after["types"].get(k, 0) - before["types"].get(k, 0) for k in after["types"]}
    for name, n in sorted(grown.items(), key=lambda kv: -kv[1])[:top]:
        if n / sockets >= 0.5:
            lines.append(f"  {n / sockets:6.1f}  {name}")
    calls = {k: after["coroutines"].get(k, 0) - before["coroutines"].get(k, 0) for k in after["coroutines"]}
    lines.append("suspended coroutines per socket (the ASGI call chain a socket keeps):")
    lines.extend(f"  {n / sockets:6.1f}  {name}" for name, n in sorted(calls.items(), key=lambda kv: -kv[1])
                 if n / sockets >= 0.5)
    if "snapshot" in before and "snapshot" in after:
        old = tracemalloc.Snapshot.load(before["snapshot"])
        new = tracemalloc.Snapshot.load(after["snapshot"])
        diff = new.compare_to(old, "lineno")
        total = sum(d.size_diff for d in diff)
        lines.append(f"tracemalloc: {total / sockets / 1000:.1f} kB per socket; the sites that grew most:")
        for d in diff[:top]:
            lines.append(f"  {d.size_diff / sockets:8.0f} B {d.count_diff / sockets:5.1f} blocks  {d.traceback[0]}")
        traced = new.compare_to(old, "traceback")
        lines.append("the biggest, with their callers:")
        for d in traced[:8]:
            lines.append(f"  {d.size_diff / sockets:8.0f} B per socket")
            lines.extend(f"      {frame}" for frame in list(d.traceback)[-6:])
    return lines


async def run(args: argparse.Namespace, var_dir: Path) -> list[str]:
    children: list[Any] = []
    pools: list[ClientPool] = []
    try:
        mongo_child = embedded.start_mongo(var_dir, in_memory=True)
        children.append(mongo_child)
        redis_child = embedded.start_redis(var_dir)
        children.append(redis_child)
        fixture = await prepare(mongo_child.url, 1, None)
        out = var_dir / "memory.jsonl"
        env = {**os.environ, "MONGODB_URL": mongo_child.url, "REDIS_URL": redis_child.url, "MONGODB_DB": DB_NAME,
               "SHANGQUAN_CONTENT_DIR": str(fixture.content_dir), "SHANGQUAN_VAR_DIR": str(var_dir), "DEBUG": "",
               "BENCH_MEMORY_OUT": str(out), **NO_RATE_LIMITS}
        if args.trace:
            env["PYTHONTRACEMALLOC"] = str(args.trace)
        if args.ws:
            env["BENCH_WS"] = args.ws
        web = spawn_server("graphql", env, var_dir)
        children.append(web)
        await wait_ready(web)
        url = web.url.replace("http://", "ws://") + "/graphql"
        district, area = to_global("District", DISTRICT), to_global("Area", fixture.latency_area)
        pools.append(await ClientPool.open([url], args.warm, 1, district, area, False))
        await wait_quiet(pools[0])
        before = await census(web.process.pid, out)
        procs = args.client_procs or max(1, math.ceil(args.sockets / 1250))
        pools.append(await ClientPool.open([url], args.sockets, procs, district, area, False))
        await wait_quiet(pools[1], quiet=2.0)
        after = await census(web.process.pid, out)
        head = [f"{args.sockets} idle subscribed sockets added to {args.warm} (clients in {procs} processes, "
                f"ws={args.ws or 'the app default'}, tracemalloc frames={args.trace}); load average "
                f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
        return head + per_socket(before, after, args.sockets, args.top)
    finally:
        for pool in pools:
            await pool.close()
        for child in reversed(children):
            child.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Memory of an idle subscribed live socket in the web process.")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument("--client-procs", type=int, default=0)
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off, for the RSS figure)")
    parser.add_argument("--ws", default="", help="uvicorn's ws implementation (default: as the app runs)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="shangquan-live-memory-"))
    try:
        print("\n".join(asyncio.run(run(args, var_dir))), flush=True)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"kept {var_dir}")


if __name__ == "__main__":
    sys.exit(main())
