"""Fan-out through the local push service: exactly once per subscriber, across workers and a worker's death."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from server.domain.actor import Actor
from server.domain.i18n import LOCALES
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service
from server.domain.push.campaign import CampaignInput
from server.domain.push.endpoints import origin_of
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.domain.push.models import PushSubscription, subscription_id
from server.push import fanout
from server.push.encode import EncodedMessage
from server.push.fanout import DELIVERIES, FINAL, Consumer, FanoutConfig
from server.push.reconcile import reconcile
from server.push.sender import PushSender, SendResult
from tests.push.push_service import PushService

ADMIN = Actor("admin-1", "admin@shangquan.example", "admin")
TEXTS = {"zh-CN": "华强北电子节今晚开幕", "zh-HK": "華強北電子節今晚開幕",
         "en": "Huaqiangbei electronics festival opens"}


def config(**changes: Any) -> FanoutConfig:
    base = FanoutConfig(stream=f"push_batches_test_{uuid.uuid4().hex[:8]}", batch_size=25, read_count=1,
                        block_ms=50, reclaim_idle_ms=5_000, stale_after=5.0, sweep_every=0.1, expand_every=0.1,
                        backoff=0.1)
    return replace(base, **changes)


async def add_subscribers(db: Any, service: PushService, n: int, *, districts: tuple[str, ...] = ("huaqiangbei",),
                          topics: tuple[str, ...] = ("festivals",)) -> dict[str, str]:
    """n subscribers at the local push service; returns token → locale."""
    now = datetime.now(UTC)
    docs, tokens = [], {}
    for i in range(n):
        subscriber, target = service.subscriber()
        locale = LOCALES[i % len(LOCALES)]
        sub = PushSubscription(subscription_id(target.endpoint), target.endpoint, target.p256dh, target.auth,
                               origin_of(target.endpoint), districts, topics, locale, now, now)
        docs.append(sub.to_doc())
        tokens[subscriber.token] = locale
    await db[SUBSCRIPTIONS].insert_many(docs)
    return tokens


async def new_campaign(db: Any, **changes: Any) -> campaign_model.Campaign:
    data = CampaignInput(title=dict(TEXTS), body={"zh-CN": "今晚 8 点", "en": "Tonight at 8"},
                         url={"zh-CN": "/d/huaqiangbei"}, district_ids=["huaqiangbei"], topics=["festivals"])
    return await campaign_service.create(db, ADMIN, replace(data, **changes), now=datetime.now(UTC))


async def run_until_done(db: Any, campaign_id: str, consumers: list[Consumer], limit: float = 60) -> dict[str, int]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    deadline = time.monotonic() + limit
    try:
        while True:
            campaign = await campaign_service.get(db, campaign_id)
            assert campaign is not None
            counts = await fanout.delivery_counts(db, campaign_id)
            if campaign.stage == campaign_model.STAGE_EXPANDED and \
                    sum(counts.get(s, 0) for s in FINAL) == campaign.stats["targeted"]:
                return counts
            assert time.monotonic() < deadline, counts
            for task in tasks:
                if task.done():
                    task.result()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def per_token(service: PushService) -> Counter[str]:
    return Counter(r.token for r in service.received)


async def test_two_consumers_send_each_subscriber_exactly_once_in_its_locale(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    tokens = await add_subscribers(db, fresh_service, 200)
    others = await add_subscribers(db, fresh_service, 5, districts=("dongmen",))
    others |= await add_subscribers(db, fresh_service, 5, topics=("offers",))
    campaign = await new_campaign(db, collapse_topic="hqb-festival", urgency="high")
    cfg = config()
    assert await fanout.enqueue(db, redis, campaign.id, cfg) == 200
    assert await fanout.enqueue(db, redis, campaign.id, cfg) is None  # expanded once
    consumers = [Consumer(db, redis, sender, name=f"w{i}", config=cfg) for i in range(2)]
    counts = await run_until_done(db, campaign.id, consumers)
    assert counts == {"delivered": 200}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
    for got in fresh_service.received:
        message = json.loads(got.plaintext)
        locale = tokens[got.token]
        assert message == {"id": campaign.id, "title": TEXTS[locale],
                           "body": "Tonight at 8" if locale == "en" else "今晚 8 点", "url": "/d/huaqiangbei"}
        assert got.headers["topic"] == "hqb-festival" and got.headers["urgency"] == "high"
        assert 86000 < int(got.headers["ttl"]) <= 86400
    assert not set(per_token(fresh_service)) & set(others)
    by = {doc["by"] async for doc in db[DELIVERIES].find({"campaign_id": campaign.id})}
    assert by == {"w0", "w1"}
    stored = await campaign_service.get(db, campaign.id)
    assert stored is not None and stored.stats["targeted"] == 200 and stored.stats["delivered"] == 200
    pending: Any = await redis.xpending(cfg.stream, cfg.group)
    assert pending["pending"] == 0


async def test_410_deletes_the_subscription_and_counts_expired(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    await add_subscribers(db, fresh_service, 10)
    campaign = await new_campaign(db)
    fresh_service.answer(410, times=3)
    cfg = config()
    await fanout.enqueue(db, redis, campaign.id, cfg)
    counts = await run_until_done(db, campaign.id, [Consumer(db, redis, sender, name="w", config=cfg)])
    assert counts == {"delivered": 7, "expired": 3}
    assert await db[SUBSCRIPTIONS].count_documents({}) == 7
    assert len(per_token(fresh_service)) == 7
    stored = await campaign_service.get(db, campaign.id)
    assert stored is not None and (stored.stats["delivered"], stored.stats["expired"]) == (7, 3)


async def test_429_retry_after_is_honoured_then_delivered(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    tokens = await add_subscribers(db, fresh_service, 6)
    campaign = await new_campaign(db)
    fresh_service.answer(429, headers={"Retry-After": "1"})
    cfg = config(in_flight=1)
    await fanout.enqueue(db, redis, campaign.id, cfg)
    started = time.monotonic()
    counts = await run_until_done(db, campaign.id, [Consumer(db, redis, sender, name="w", config=cfg)])
    assert counts == {"delivered": 6}
    assert time.monotonic() - started >= 0.9  # the push service asked for a second
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
    stored = await campaign_service.get(db, campaign.id)
    assert stored is not None and stored.stats["rate_limited"] >= 1 and stored.stats["delivered"] == 6


async def test_5xx_is_retried_with_backoff_then_given_up(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    await add_subscribers(db, fresh_service, 1)
    fresh_service.answer(500, times=2)
    first = await new_campaign(db)
    cfg = config(max_failures=3)
    await fanout.enqueue(db, redis, first.id, cfg)
    assert await run_until_done(db, first.id, [Consumer(db, redis, sender, name="w", config=cfg)]) == \
        {"delivered": 1}
    fresh_service.answer(503, times=3)
    second = await new_campaign(db)
    await fanout.enqueue(db, redis, second.id, cfg)
    assert await run_until_done(db, second.id, [Consumer(db, redis, sender, name="w", config=cfg)]) == \
        {"failed": 1}
    one, two = await campaign_service.get(db, first.id), await campaign_service.get(db, second.id)
    assert one is not None and two is not None
    assert one.stats["retried"] == 2 and (two.stats["retried"], two.stats["failed"]) == (2, 1)


class Died(BaseException):
    """A worker killed mid-batch (BaseException, so no handler in the consumer catches it)."""


class DyingConsumer(Consumer):
    def __init__(self, *args: Any, sends: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends_left = sends

    async def send(self, message: EncodedMessage) -> SendResult:
        if self.sends_left == 0:
            raise Died()  # its claim record is stored, the message is not sent, the batch is not acked
        self.sends_left -= 1
        return await super().send(message)


async def test_a_dead_consumers_batch_is_finished_by_another_and_nobody_gets_two(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    tokens = await add_subscribers(db, fresh_service, 60)
    campaign = await new_campaign(db)
    cfg = config(batch_size=60, in_flight=1, reclaim_idle_ms=300, stale_after=1.0)
    await fanout.enqueue(db, redis, campaign.id, cfg)
    dying = DyingConsumer(db, redis, sender, name="dies", config=cfg, sends=20)
    await fanout.ensure_group(redis, cfg)
    with pytest.raises(BaseExceptionGroup):
        await dying.read_once(block_ms=100)
    assert len(fresh_service.received) == 20
    counts = await fanout.delivery_counts(db, campaign.id)
    assert counts["delivered"] == 20 and counts["sending"] >= 1 and set(counts) == {"delivered", "sending"}
    pending: Any = await redis.xpending(cfg.stream, cfg.group)
    assert pending["pending"] == 1  # the batch was never acknowledged
    counts = await run_until_done(db, campaign.id, [Consumer(db, redis, sender, name="heir", config=cfg)])
    assert counts == {"delivered": 60}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
    stored = await campaign_service.get(db, campaign.id)
    assert stored is not None and stored.stats["delivered"] == 60
    pending = await redis.xpending(cfg.stream, cfg.group)
    assert pending["pending"] == 0


class CancellingConsumer(Consumer):
    async def send(self, message: EncodedMessage) -> SendResult:
        result = await super().send(message)
        if len(self.sent) == 9:
            await campaign_service.cancel(self.db, ADMIN, self.campaign_id)
        self.sent.append(message.endpoint)
        return result

    sent: list[str]
    campaign_id: str


async def test_cancel_stops_what_is_not_yet_sent(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    await add_subscribers(db, fresh_service, 30)
    campaign = await new_campaign(db)
    cfg = config(in_flight=1, status_cache=0.0)
    await fanout.enqueue(db, redis, campaign.id, cfg)
    consumer = CancellingConsumer(db, redis, sender, name="w", config=cfg)
    consumer.sent, consumer.campaign_id = [], campaign.id
    counts = await run_until_done(db, campaign.id, [consumer])
    assert counts == {"delivered": 10, "cancelled": 20}
    assert len(fresh_service.received) == 10
    # cancelled before the worker reached it: nothing at all
    fresh_service.received.clear()
    other = await new_campaign(db)
    await campaign_service.cancel(db, ADMIN, other.id)
    assert await fanout.enqueue(db, redis, other.id, cfg) is None
    assert await fanout.expand_pending(db, redis, cfg) == 0
    assert fresh_service.received == []


async def test_a_campaign_the_web_process_never_enqueued_is_expanded_by_the_worker(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    tokens = await add_subscribers(db, fresh_service, 3)
    campaign = await new_campaign(db)
    counts = await run_until_done(db, campaign.id, [Consumer(db, redis, sender, name="w", config=config())])
    assert counts == {"delivered": 3}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))


async def test_counters_a_killed_worker_left_short_are_recounted_from_the_records(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    await add_subscribers(db, fresh_service, 60)
    campaign = await new_campaign(db, urgency="high")
    cfg = config()
    assert await fanout.enqueue(db, redis, campaign.id, cfg) == 60
    await run_until_done(db, campaign.id, [Consumer(db, redis, sender, name="w", config=cfg)])
    # the worker died after writing a group of 25 outcomes and before adding them to the counters
    await db[campaign_model.COLLECTION].update_one({"_id": campaign.id}, {"$inc": {"stats.delivered": -25,
                                                                             "stats.sent": -25}})
    short = await campaign_service.get(db, campaign.id)
    assert short is not None and not short.finished()
    assert await reconcile(db, now=time.time()) == []  # outcomes just written: their $inc may still come
    assert await reconcile(db, now=time.time() + 120) == [campaign.id]
    fixed = await campaign_service.get(db, campaign.id)
    assert fixed is not None and fixed.finished()
    assert (fixed.stats["delivered"], fixed.stats["sent"], fixed.stats["targeted"]) == (60, 60, 60)
    assert await reconcile(db, now=time.time() + 120) == []  # nothing left to fix


async def test_a_campaign_whose_batches_redis_lost_is_expanded_again(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    tokens = await add_subscribers(db, fresh_service, 60)
    campaign = await new_campaign(db, urgency="high")
    cfg = config()
    assert await fanout.enqueue(db, redis, campaign.id, cfg) == 60
    await redis.delete(cfg.stream)  # Redis restarted without persistence: the queued batches are gone
    assert await reconcile(db, now=time.time() + 60) == []  # not yet: the batches may just be slow
    stuck = await campaign_service.get(db, campaign.id)
    assert stuck is not None and stuck.stage == campaign_model.STAGE_EXPANDED
    assert await reconcile(db, now=time.time() + 700) == []
    again = await campaign_service.get(db, campaign.id)
    assert again is not None and again.stage == campaign_model.STAGE_NEW
    counts = await run_until_done(db, campaign.id, [Consumer(db, redis, sender, name="w", config=cfg)])
    assert counts == {"delivered": 60}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
