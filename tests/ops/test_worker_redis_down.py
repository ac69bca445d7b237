"""A worker process rides out a Redis restart (and a start while Redis is away) instead of exiting: after
Redis is back it takes crowd alerts off the stream again and turns them into campaigns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from server.domain.crowd.alerts import STREAM
from server.domain.push import campaign_service
from server.settings import ROOT
from tests.conftest import unique_db
from tests.ops.servers import RedisServer, eventually


async def raise_alert(db: Any, redis: Redis) -> str:
    alert_id = uuid.uuid4().hex
    area = f"area-{alert_id[:6]}"
    await db.areas.insert_one({"_id": area, "district_id": "huaqiangbei", "name": {"en": area}})
    await db.crowd_alerts.insert_one({"_id": alert_id, "area_id": area, "district_id": "huaqiangbei",
                                      "level": "PACKED", "percent": 95.0, "at": datetime.now(UTC), "kind": "raised"})
    await redis.xadd(STREAM, {"alert_id": alert_id, "area_id": area, "district_id": "huaqiangbei",
                              "level": "PACKED"})
    return alert_id


async def test_a_worker_outlives_a_redis_restart(db_client: Any, mongo_url: str, tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    db = db_client[unique_db("worker_redis")]
    await db.districts.insert_one({"_id": "huaqiangbei", "name": {"en": "Huaqiangbei"}})
    env = {**os.environ, "MONGODB_URL": mongo_url, "MONGODB_DB": db.name, "REDIS_URL": redis_server.url,
           "LOG_FORMAT": "text", "PUSH_QUIET_HOURS": "", "CROWD_SIMULATOR": "0"}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:  # started while Redis is not there yet: it must wait, not exit
        worker = subprocess.Popen([sys.executable, "-m", "server.worker"], cwd=ROOT, env=env,
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async def waiting() -> bool:
            return "worker waits for Redis" in log.read_text()

        await eventually(waiting, within=30)
        redis_server.start()
        first = await raise_alert(db, redis)

        async def made(alert_id: str) -> bool:
            assert worker.poll() is None, log.read_text()
            return await campaign_service.get(db, alert_id) is not None

        await eventually(lambda: made(first), within=30)

        redis_server.stop()  # a restart without persistence: the stream and its consumer group are gone too
        await eventually(lambda: _lost(log), within=15)
        assert worker.poll() is None, log.read_text()
        redis_server.start()
        await redis.aclose()
        redis = Redis.from_url(redis_server.url, decode_responses=True)
        second = await raise_alert(db, redis)
        await eventually(lambda: made(second), within=30)
    finally:
        await redis.aclose()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)
        redis_server.stop()
        await db_client.drop_database(db.name)
    assert worker.returncode in (0, -signal.SIGTERM), log.read_text()


async def _lost(log: Path) -> bool:
    return "lost Redis" in log.read_text()
