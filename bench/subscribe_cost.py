"""Benchmark: the web process's CPU per shopper `subscribe` of bench/load.py's mix, on its own.

    python bench/load.py's setup, then:  python bench/subscribe_cost.py [--seconds 20] [--concurrency 4]
                                                                      [--held 50] [--py-spy N]

Starts nx-27017, Redis, content and the web app as bench/load.py does (the worker is not needed), opens
`--held` long-lived subscriptions as its phase 1 has, then `--concurrency` clients each open a subscription
exactly as the mix's `subscribe` does (graphql-transport-ws with permessage-deflate, its own X-Forwarded-For,
connection_init, subscribe CrowdUpdates, the first frame) and close it at once, for `--seconds`. Printed: the
web process's CPU ms per subscribe (its /proc CPU time over the window / subscribes) and the load average.
`--py-spy N` records the web process with py-spy at N Hz meanwhile and prints the top functions (self and
total), so a reader sees where a subscribe's CPU goes. The hold itself costs the web process nothing between
frames; only its close is left out here (the socket is closed at once instead of after 20-90 s).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from crowd_live import wait_ready  # bench/ is sys.path[0] when run as a script
from graphql_read import cpu_seconds, spawn_server
from load import DB_NAME, LiveSubscription, Recorder, prepare

from server.services import embedded
from server.settings import ROOT


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def top_frames(raw: Path, limit: int = 25) -> str:
    """py-spy's --format raw (collapsed stacks): the functions with most samples, self and total."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    out = [f"{samples} samples"]
    out += ["self:"] + [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(limit)]
    out += ["total:"] + [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(limit)]
    return "\n".join(out)


async def run(args: argparse.Namespace, var_dir: Path) -> None:
    mongo_child = embedded.start_mongo(var_dir, in_memory=True)
    redis_child = embedded.start_redis(var_dir)
    web = None
    try:
        env = {**os.environ, "MONGODB_URL": mongo_child.url, "REDIS_URL": redis_child.url, "MONGODB_DB": DB_NAME,
               "SHANGQUAN_CONTENT_DIR": str(ROOT / "content"), "SHANGQUAN_VAR_DIR": str(var_dir), "DEBUG": "",
               "CROWD_SIMULATOR": "", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
        catalog = await prepare(mongo_child.url, "", 0, print)
        web = spawn_server("asgi", env, var_dir)
        await wait_ready(web)
        pid = web.process.pid
        url = web.url.replace("http://", "ws://") + "/graphql"
        recorder = Recorder()
        rng = random.Random(1)

        def phone() -> str:
            n = rng.randrange(1 << 20)
            return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"

        held = []
        for i in range(args.held):
            sub = LiveSubscription(catalog.districts[i % len(catalog.districts)], recorder, keep_arrivals=False)
            await sub.open(url, catalog.subscription_text, phone())
            held.append(sub)
        done = 0
        failed = 0

        async def client(until: float) -> None:
            nonlocal done, failed
            while time.monotonic() < until:
                sub = LiveSubscription(rng.choice(catalog.districts), recorder, keep_arrivals=False)
                try:
                    await sub.open(url, catalog.subscription_text, phone())
                    done += 1
                except Exception:
                    failed += 1
                await sub.close()

        await asyncio.gather(*(client(time.monotonic() + 3) for _ in range(args.concurrency)))  # warm-up
        done = failed = 0
        spy = None
        raw = var_dir / "spy.txt"
        if args.py_spy:
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
                                    "--rate", str(args.py_spy), "--format", "raw", "--output", str(raw),
                                    "--duration", str(int(args.seconds)), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before, began, load_before = cpu_seconds(pid), time.monotonic(), loadavg()
        await asyncio.gather(*(client(began + args.seconds) for _ in range(args.concurrency)))
        cpu, wall = cpu_seconds(pid) - before, time.monotonic() - began
        print(f"{done} subscribes ({failed} failed) in {wall:.1f} s, {done / wall:.1f}/s, concurrency "
              f"{args.concurrency}, {args.held} held; web CPU {cpu:.2f} s ({cpu / wall:.2f} cores): "
              f"{1000 * cpu / max(done, 1):.2f} ms per subscribe; load average {load_before} -> {loadavg()}")
        for sub in held:
            await sub.close()
        if spy is not None:
            spy.wait(timeout=60)
            print(top_frames(raw))
    finally:
        if web is not None:
            web.stop()
        redis_child.stop()
        mongo_child.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--held", type=int, default=50, help="long-lived subscriptions open meanwhile")
    parser.add_argument("--py-spy", type=int, default=0, metavar="HZ", help="sample the web process at HZ")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="subscribe-cost-") as var:
        uvloop.run(run(args, Path(var)))


if __name__ == "__main__":
    main()
