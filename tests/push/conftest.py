from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from server.push.hosts import HostGuard
from server.push.sender import PushSender
from server.push.vapid import VapidKeys, VapidSigner
from server.services.redis import connect as connect_redis
from tests.conftest import unique_db
from tests.push.push_service import PushService, RunningPushService


@pytest.fixture(scope="session")
async def push_service() -> AsyncIterator[PushService]:
    running = RunningPushService()
    service = await running.start()
    yield service
    await running.stop()


@pytest.fixture
def fresh_service(push_service: PushService) -> PushService:
    push_service.received.clear()
    push_service.rejected.clear()
    push_service._answers.clear()
    return push_service


@pytest.fixture(scope="session")
def vapid_keys() -> VapidKeys:
    return VapidKeys.generate()


@pytest.fixture
async def sender(vapid_keys: VapidKeys) -> AsyncIterator[PushSender]:
    signer = VapidSigner(vapid_keys, "mailto:ops@shangquan.example")
    s = PushSender(signer, HostGuard(allow_local=True), concurrency=8, timeout=5)
    yield s
    await s.aclose()


@pytest.fixture
async def db(db_client: AsyncMongoClient[Any]) -> AsyncIterator[Any]:
    name = unique_db("push")
    database = db_client[name]
    await database.districts.insert_many([{"_id": "huaqiangbei"}, {"_id": "dongmen"}, {"_id": "shekou"}])
    yield database
    await db_client.drop_database(name)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    yield client
    await client.aclose()
