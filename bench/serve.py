"""Launcher for the benchmarks (graphql_read, crowd_live, load): one server per process, optionally profiled.

    python bench/serve.py graphql --port 8001    # server.asgi.create_app() from the environment
    python bench/serve.py plain --port 8002      # plain_json_app.app_from_env()
    python bench/serve.py asgi --port 8003       # `server.asgi:app` as the Procfile's web runs it
    python bench/serve.py push-sink --port 8004  # push_sink.app_from_env(), for bench/load.py --fault

With --memory-out FILE (or BENCH_MEMORY_OUT=FILE), SIGUSR2 appends one JSON line to FILE: the process's
RSS, the 60 most common object types the garbage collector tracks after a full collection (objects
frozen at start-up are not counted) and, when tracemalloc runs (PYTHONTRACEMALLOC=N in the environment),
the 30 source lines holding the most memory (and the whole snapshot, in a file the line names).  Two lines
minutes apart show what grows.

`asgi` is the production entry point: logging configured from LOG_LEVEL / LOG_FORMAT, start-up checks,
one access line per request from the app (uvicorn's own access log off, as `--no-access-log` does).

With --profile-out FILE, SIGUSR1 switches cProfile on (so start-up and warm-up stay out)
and the stats are written to FILE when the server stops on SIGTERM (uvicorn shuts down
gracefully first); FILE.gc.json gets the time spent in garbage collections meanwhile.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import signal
import sys
import time
import tracemalloc
import types as types_module
from collections import Counter
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from server.api.live.protocol import UVICORN_WS


def build(target: str) -> Starlette:
    if target == "graphql":
        from server.asgi import create_app

        return create_app()  # Settings.from_env(): MONGODB_URL, REDIS_URL, MONGODB_DB, SHANGQUAN_*
    if target == "asgi":
        from server import asgi

        app: Starlette = asgi.app  # what `uvicorn server.asgi:app` loads
        return app
    if target == "push-sink":
        from push_sink import app_from_env as sink_from_env  # bench/ is sys.path[0] when run as a script

        return sink_from_env()
    from plain_json_app import app_from_env

    return app_from_env()


def _exit(signum: int, frame: FrameType | None) -> None:
    # uvicorn catches SIGTERM, shuts down, then re-raises it to the previous handler: this one,
    # so the process leaves through `finally` (and writes its profile) instead of dying at once.
    sys.exit(0)


class GcTimer:
    """Wall time spent in the cyclic garbage collector, per generation, while on."""

    def __init__(self) -> None:
        self.on = False
        self.started = 0.0
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.on:
            return
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self.started
            self.collections[info["generation"]] += 1


def dump_memory(path: str) -> None:
    """One JSON line: RSS, object counts by type and (when tracing) the biggest allocation sites."""
    rss = next((int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmRSS:")), 0)
    gc.collect()  # count what is still referenced, not cycles waiting for a full collection
    objects = gc.get_objects()
    types = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    # suspended coroutines by function: a long-lived socket's ASGI call chain shows here, one per layer
    coroutines = Counter(f"{Path(o.cr_code.co_filename).name}:{o.cr_code.co_qualname}"
                         for o in objects if isinstance(o, types_module.CoroutineType))
    record: dict[str, object] = {"at": time.time(), "rss_kb": rss, "objects": sum(types.values()),
                                 "types": dict(types.most_common(60)), "coroutines": dict(coroutines.most_common(60))}
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("lineno")[:30]
        record["tracemalloc"] = [[str(s.traceback[0]), s.size, s.count] for s in stats]
        record["snapshot"] = f"{path}.{int(time.time() * 1000)}.tracemalloc"
        snapshot.dump(str(record["snapshot"]))  # for diffing two censuses (bench/live_memory.py)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=["graphql", "plain", "asgi", "push-sink"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile-out", default="")
    parser.add_argument("--ws", default=os.environ.get("BENCH_WS", ""),
                        help="uvicorn's WebSocket implementation instead of the app's (a comparison)")
    parser.add_argument("--memory-out", default=os.environ.get("BENCH_MEMORY_OUT", ""),
                        help="SIGUSR2 appends a memory census to this file (default: $BENCH_MEMORY_OUT)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit)
    if args.memory_out:
        memory_out = args.memory_out
        signal.signal(signal.SIGUSR2, lambda signum, frame: dump_memory(memory_out))
    app = build(args.target)
    profiler: cProfile.Profile | None = None
    gc_timer = GcTimer()
    if args.profile_out:
        # BENCH_PROFILE_CLOCK=cpu: CPU time (slower per call), so a wait for the CPU on a busy machine is not counted
        active = cProfile.Profile(time.thread_time) if os.environ.get("BENCH_PROFILE_CLOCK") == "cpu" \
            else cProfile.Profile()
        gc.callbacks.append(gc_timer)

        def start(signum: int, frame: FrameType | None) -> None:
            gc_timer.on = True
            active.enable()

        signal.signal(signal.SIGUSR1, start)
        profiler = active
    ws = {**UVICORN_WS, **({"ws": args.ws} if args.ws else {})}  # the Procfile's, unless --ws
    try:
        if args.target == "asgi":  # the app's own logging, as under the Procfile's `--no-access-log`
            uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, lifespan="on",
                        **ws)  # as the Procfile runs it
        else:
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on", **ws)
    finally:
        if profiler is not None:
            profiler.disable()
            gc_timer.on = False
            profiler.dump_stats(args.profile_out)
            with open(args.profile_out + ".gc.json", "w", encoding="utf-8") as out:
                json.dump({"seconds": gc_timer.seconds, "collections": gc_timer.collections}, out)


if __name__ == "__main__":
    main()
