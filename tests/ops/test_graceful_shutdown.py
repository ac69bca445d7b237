"""SIGTERM to the web process as the Procfile runs it: it stops accepting, finishes the request in flight,
closes live sockets with 1012 (service restart, so the PWA reconnects elsewhere) and exits by itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from server.api.ids import to_global
from server.api.live.protocol import UVICORN_WS_ARGS
from server.services.embedded import free_port
from server.settings import ROOT
from tests.conftest import RunningApp, unique_db
from tests.ops.live import next_update, open_subscription
from tests.ops.servers import eventually

GRACE = 10  # --timeout-graceful-shutdown: in-flight work gets this long before it is cancelled
READ = '{ district(id: "%s") { id name } }' % to_global("District", "huaqiangbei")


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def exited(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None


@pytest.fixture
def web(app_server: RunningApp, tmp_path: Path) -> Any:
    port = free_port()
    log = tmp_path / "web.log"
    env = {**os.environ, "MONGODB_URL": app_server.settings.mongodb_url, "REDIS_URL": app_server.settings.redis_url,
           "MONGODB_DB": unique_db("shutdown"), "SHANGQUAN_VAR_DIR": str(tmp_path),
           "SHANGQUAN_CONTENT_DIR": str(ROOT / "tests" / "fixtures" / "content"), "LOG_FORMAT": "text"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "server.asgi:app", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", "--timeout-graceful-shutdown", str(GRACE), *UVICORN_WS_ARGS],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        yield port, process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def test_sigterm_finishes_requests_closes_sockets_and_exits(web: Any) -> None:
    port, process, log = web
    base = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        assert process.poll() is None, log.read_text()
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{base}/readyz")).status_code == 200

    await eventually(ready, within=60)
    async with httpx.AsyncClient(timeout=5) as http:  # uvicorn's own access line would print the query string
        await http.get(f"{base}/graphql", params={"query": "{ __typename }", "invite": "secret-in-query-8731"})
    ws = await open_subscription(base, "huaqiangbei")
    await next_update(ws)
    # A request in flight: its headers ask "100-continue", and the app's first read of the body sends
    # that interim answer, so once it arrives the app is certainly inside the request, waiting for its body.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"query": READ}).encode()
    writer.write(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 100")
    assert await asyncio.wait_for(reader.readline(), 10) == b"\r\n"

    process.send_signal(signal.SIGTERM)

    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    await eventually(lambda: refused(port), within=10)  # no new connections…
    assert process.poll() is None, "…while the request in flight is still being served"
    writer.write(body)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, *header_lines = head.decode("latin-1").split("\r\n")
    assert status.startswith("HTTP/1.1 200"), head
    headers = dict(line.split(": ", 1) for line in header_lines if line)
    answer = json.loads(await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10))
    assert answer["data"]["district"]["name"] and "errors" not in answer
    assert headers.get("connection") == "close"
    writer.close()

    await eventually(lambda: exited(process), within=GRACE + 5)
    text = log.read_text()
    # uvicorn re-raises the SIGTERM it handled once it is done, so a clean stop reads as "ended by SIGTERM"
    assert process.returncode in (0, -signal.SIGTERM), text
    assert "Application shutdown complete" in text and "Traceback" not in text, text
    assert "timeout graceful shutdown exceeded" not in text, text
    assert "/graphql" in text and "secret-in-query-8731" not in text, text  # one access line, ours
