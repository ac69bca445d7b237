"""Launcher for bench/graphql_read.py: one server per process, optionally under cProfile.

    python bench/serve.py graphql --port 8001    # server.asgi.create_app() from the environment
    python bench/serve.py plain --port 8002      # plain_json_app.app_from_env()

With --profile-out FILE, SIGUSR1 switches cProfile on (so start-up and warm-up stay out)
and the stats are written to FILE when the server stops on SIGTERM (uvicorn shuts down
gracefully first); FILE.gc.json gets the time spent in garbage collections meanwhile.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import signal
import sys
import time
from types import FrameType

import uvicorn
from starlette.applications import Starlette


def build(target: str) -> Starlette:
    if target == "graphql":
        from server.asgi import create_app

        return create_app()  # Settings.from_env(): MONGODB_URL, REDIS_URL, MONGODB_DB, SHANGQUAN_*
    from plain_json_app import app_from_env  # bench/ is sys.path[0] when run as a script

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=["graphql", "plain"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile-out", default="")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit)
    app = build(args.target)
    profiler: cProfile.Profile | None = None
    gc_timer = GcTimer()
    if args.profile_out:
        active = cProfile.Profile()
        gc.callbacks.append(gc_timer)

        def start(signum: int, frame: FrameType | None) -> None:
            gc_timer.on = True
            active.enable()

        signal.signal(signal.SIGUSR1, start)
        profiler = active
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    finally:
        if profiler is not None:
            profiler.disable()
            gc_timer.on = False
            profiler.dump_stats(args.profile_out)
            with open(args.profile_out + ".gc.json", "w", encoding="utf-8") as out:
                json.dump({"seconds": gc_timer.seconds, "collections": gc_timer.collections}, out)


if __name__ == "__main__":
    main()
