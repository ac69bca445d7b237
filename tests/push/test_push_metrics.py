"""Push metrics (outcomes and latency by push service, stream backlog and pending age) and the batch log line."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from redis.asyncio import Redis

from server.domain.push import campaign_service
from server.observability.logs import JsonFormatter, RedactionFilter
from server.observability.metrics import refresh_stream_gauges
from server.push import fanout
from server.push.fanout import Consumer
from server.push.sender import PushSender
from tests.push.push_service import PushService
from tests.push.test_delivery_rules import campaign_input, campaigns_admin, finished, running, until
from tests.push.test_fanout import add_subscribers, config


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_outcomes_and_latency_by_push_service(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    await add_subscribers(db, fresh_service, 10)
    fresh_service.answer(410, times=3)
    before = {outcome: sample("shangquan_push_messages_total", outcome=outcome, service="127.0.0.1")
              for outcome in ("delivered", "expired")}
    posts = sample("shangquan_push_send_duration_seconds_count", service="127.0.0.1")
    campaign = await campaign_service.create(db, campaigns_admin(), campaign_input(), now=datetime.now(UTC))
    async with running(Consumer(db, redis, sender, name="metered", config=config())):
        await until(lambda: finished(db, campaign.id))
    assert sample("shangquan_push_messages_total", outcome="delivered", service="127.0.0.1") - \
        before["delivered"] == 7
    assert sample("shangquan_push_messages_total", outcome="expired", service="127.0.0.1") - before["expired"] == 3
    assert sample("shangquan_push_send_duration_seconds_count", service="127.0.0.1") - posts == 10
    text = generate_latest(REGISTRY).decode()
    assert 'shangquan_push_messages_total{outcome="delivered",service="127.0.0.1"}' in text
    assert 'shangquan_push_send_duration_seconds_bucket{le="0.005",service="127.0.0.1"}' in text


async def test_stream_backlog_pending_and_oldest_pending_age(redis: Redis) -> None:
    stream, group = f"metrics_test_{uuid.uuid4().hex[:8]}", "readers"
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    for i in range(5):
        await redis.xadd(stream, {"n": str(i)})
    await redis.xreadgroup(group, "c1", {stream: ">"}, count=3)  # 3 pending, 2 not yet read
    await asyncio.sleep(0.2)
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    await refresh_stream_gauges(redis, [(stream, group), (missing, "nobody")])
    assert sample("shangquan_stream_backlog_entries", stream=stream, group=group) == 2
    assert sample("shangquan_stream_pending_entries", stream=stream, group=group) == 3
    assert 0.2 <= sample("shangquan_stream_oldest_pending_seconds", stream=stream, group=group) < 60
    assert sample("shangquan_stream_backlog_entries", stream=missing, group="nobody") == 0
    entries: Any = await redis.xreadgroup(group, "c1", {stream: ">"})
    ids = [entry_id for _, batch in entries for entry_id, _ in batch]
    pending: Any = await redis.xpending_range(stream, group, min="-", max="+", count=10)
    await redis.xack(stream, group, *ids, *[p["message_id"] for p in pending])
    await refresh_stream_gauges(redis, [(stream, group)])
    assert sample("shangquan_stream_backlog_entries", stream=stream, group=group) == 0
    assert sample("shangquan_stream_pending_entries", stream=stream, group=group) == 0
    assert sample("shangquan_stream_oldest_pending_seconds", stream=stream, group=group) == 0
    await redis.delete(stream)


async def test_one_structured_log_line_per_batch_with_the_request_id(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    await add_subscribers(db, fresh_service, 30)
    out = io.StringIO()
    handler = __import__("logging").StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactionFilter())
    logger = __import__("logging").getLogger("shangquan.push.fanout")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel("INFO")
    try:
        campaign = await campaign_service.create(db, campaigns_admin(), campaign_input(), now=datetime.now(UTC),
                                          request_id="req-7f3a")
        cfg = replace(config(), batch_size=25)
        async with running(Consumer(db, redis, sender, name="logged", config=cfg)):
            await until(lambda: finished(db, campaign.id))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    jobs = [line for line in lines if line.get("job") == "push_batch" and line.get("campaign_id") == campaign.id]
    assert sorted(job["batch_size"] for job in jobs) == [5, 25]
    for job in jobs:
        assert job["request_id"] == "req-7f3a" and job["consumer"] == "logged" and job["level"] == "INFO"
        assert job["outcomes"] == {"delivered": job["batch_size"]}
        assert isinstance(job["duration_ms"], float) and job["duration_ms"] >= 0
    assert fanout.STREAM == "push_batches"
