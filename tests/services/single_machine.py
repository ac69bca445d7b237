"""`python -m server` started the way a user starts it, for the single-machine tests: a data folder of its own,
the output in a file, and what its lock file says about it (the embedded services' URLs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from server.services.embedded import free_port
from server.settings import ROOT


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class SingleMachine:
    def __init__(self, var_dir: Path, **env: str) -> None:
        self.var_dir = var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL"}}
        self.env.update(PORT=str(self.port), HOST="127.0.0.1", SHANGQUAN_VAR_DIR=str(var_dir), LOG_FORMAT="json",
                        CROWD_SIMULATOR="0", SHANGQUAN_CONTENT_DIR=str(ROOT / "tests" / "fixtures" / "content"),
                        **env)
        self.output = var_dir.parent / f"app-{self.port}.out"
        self.process: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """A command on the same data folder, to its end."""
        return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=120)

    def start(self) -> SingleMachine:
        with self.output.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=self.env,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def ready(self, limit: float = 120) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).json().get("status") == "ready":
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not ready: {self.log()[-3000:]}")

    def lock(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads((self.var_dir / "run" / "shangquan.lock").read_text())
        return record

    def child_pid(self, name: str) -> int:
        pid: int = json.loads((self.var_dir / "run" / f"{name}.pid").read_text())["pid"]
        return pid

    def stop(self, sig: int = signal.SIGINT) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)  # SIGINT: what Ctrl-C in a terminal does
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)
