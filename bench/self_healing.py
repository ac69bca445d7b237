"""Benchmark: how long single-machine mode takes to heal after an embedded service is killed.

    python bench/self_healing.py [--rounds 3]

Starts `python -m server` on a fresh data folder (the test fixtures' content, no simulated sensors), then, for
each round, kills the embedded Redis and then nx-27017 with SIGKILL and measures the time until `/readyz`
answers `ready` again.  The baseline, measured in the same run: a whole start of the app on the same data
folder (process start to `ready`), so the ratio says how much cheaper healing is than a restart by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.services.embedded import free_port  # noqa: E402


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).json().get("status") == "ready":
                return time.monotonic() - started
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp) / "var"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL"}}
        env.update(PORT=str(port), SHANGQUAN_VAR_DIR=str(var_dir), LOG_FORMAT="json", CROWD_SIMULATOR="0",
                   SHANGQUAN_CONTENT_DIR=str(ROOT / "tests" / "fixtures" / "content"))

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        app = start()
        wait_ready(url, app)  # the first start loads the content: not the baseline
        os.killpg(app.pid, signal.SIGINT)
        app.wait(timeout=60)
        app = start()
        baseline = wait_ready(url, app)
        heal: dict[str, list[float]] = {"redis": [], "nx-27017": []}
        try:
            for _ in range(args.rounds):
                for name in heal:
                    pid = json.loads((var_dir / "run" / f"{name}.pid").read_text())["pid"]
                    os.kill(pid, signal.SIGKILL)
                    heal[name].append(wait_ready(url, app))
        finally:
            os.killpg(app.pid, signal.SIGINT)
            app.wait(timeout=60)
    load = os.getloadavg()
    print(f"baseline: a whole start on the same data folder to ready: {baseline:.2f} s")
    for name, times in heal.items():
        median = statistics.median(times)
        print(f"{name} killed (SIGKILL) to ready again: median {median:.2f} s over {len(times)} "
              f"(min {min(times):.2f}, max {max(times):.2f}); ratio to a whole start {median / baseline:.2f}")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
