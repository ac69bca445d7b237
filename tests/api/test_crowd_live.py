"""A reading posted to one web process reaches a subscriber connected to another."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from server.api.ids import to_global
from server.api.live.protocol import UVICORN_WS_ARGS
from server.domain.crowd import sensors
from server.services.embedded import free_port
from server.settings import ROOT
from tests.conftest import RunningApp
from tests.support import make_account

AREA, DISTRICT = "hqb-zhenxing-road", "huaqiangbei"
SUBSCRIPTION = """subscription($d: ID!) { crowdUpdates(districtId: $d) { districtId sentAt
  crowd { level percent occupancy } areas { areaId crowd { occupancy level source } } } }"""


def start_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "uvicorn", "server.asgi:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning", *UVICORN_WS_ARGS], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(log.read_text())


@pytest.fixture(scope="module")
def two_processes(app_server: RunningApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    # The same database and Redis as the in-process app, whose content is already loaded.
    env = {**os.environ, "MONGODB_URL": app_server.settings.mongodb_url, "REDIS_URL": app_server.settings.redis_url,
           "MONGODB_DB": app_server.db_name, "SHANGQUAN_VAR_DIR": str(tmp_path_factory.mktemp("web"))}
    logs = tmp_path_factory.mktemp("logs")
    ports = free_port(), free_port()
    procs = []
    try:
        for index, port in enumerate(ports):
            proc = start_web(env, port, logs / f"web{index}.log")
            procs.append(proc)
            wait_ready(port, proc, logs / f"web{index}.log")
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)


async def test_reading_posted_to_one_process_reaches_a_subscriber_of_another(
        two_processes: tuple[int, int], db_client: Any, app_server: RunningApp) -> None:
    db = db_client[app_server.db_name]
    operator = await make_account(db, "operator", district_ids=[DISTRICT])
    _, key = await sensors.register(db, operator.actor(), AREA, "camera", "rooftop")
    poster, listener = two_processes
    area_id = to_global("Area", AREA)
    transport = WebsocketsTransport(url=f"ws://127.0.0.1:{listener}/graphql",
                                    subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
    async with Client(transport=transport) as session:
        request = GraphQLRequest(SUBSCRIPTION, variable_values={"d": to_global("District", DISTRICT)})
        updates = session.subscribe(request)
        first = await asyncio.wait_for(anext(updates), timeout=20)
        assert first["crowdUpdates"]["districtId"] == to_global("District", DISTRICT)
        reading = {"readings": [{"areaId": AREA, "at": datetime.now(UTC).isoformat(), "count": 4321}]}
        async with httpx.AsyncClient() as http:
            posted = await http.post(f"http://127.0.0.1:{poster}/ingest/crowd", json=reading,
                                     headers={"authorization": f"Bearer {key}"})
        assert posted.status_code == 200, posted.text
        update = await asyncio.wait_for(anext(updates), timeout=20)
        areas = {a["areaId"]: a["crowd"] for a in update["crowdUpdates"]["areas"]}
        assert areas[area_id]["occupancy"] == 4321 and areas[area_id]["source"] == "camera"
        await updates.aclose()
