"""Scheduled sends, quiet hours, the daily cap and the `sent` counter, through the local push service.

The consumer's clock is the seam: campaigns run "at 23:00 Shanghai" and then "at 08:00", whatever the real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from server.domain.inbox import service as inbox
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service, policy
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.push import fanout
from server.push.fanout import DELIVERIES, Consumer, FanoutConfig
from server.push.sender import PushSender
from tests.push.push_service import PushService
from tests.push.test_fanout import add_subscribers, config, new_campaign, per_token

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()

    @property
    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def shanghai(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=SHANGHAI)


@contextlib.asynccontextmanager
async def running(*consumers: Consumer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def until(check: Callable[[], Awaitable[bool]], limit: float = 30) -> None:
    """Polls `check`; the limit only guards against a hang."""
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def stats(db: Any, campaign_id: str) -> dict[str, int]:
    campaign = await campaign_service.get(db, campaign_id)
    assert campaign is not None
    return {k: v for k, v in campaign.stats.items() if v}


async def finished(db: Any, campaign_id: str) -> bool:
    campaign = await campaign_service.get(db, campaign_id)
    return campaign is not None and campaign.finished()


async def test_a_scheduled_campaign_starts_at_its_time_and_is_announced_once(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    tokens = await add_subscribers(db, fresh_service, 5)
    start = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(start)
    campaign = await campaign_service.create(db, campaigns_admin(), campaign_input(send_at=start + timedelta(hours=2)),
                                      now=start)
    cfg = config()
    announcements = redis.pubsub()
    await announcements.subscribe(inbox.CHANNEL)
    # before its time: neither the web process's enqueue nor the worker's expand loop touches it
    assert await fanout.enqueue(db, redis, campaign.id, cfg, clock=clock) is None
    consumer = Consumer(db, redis, sender, name="w", config=cfg, clock=clock)
    async with running(consumer):
        await asyncio.sleep(0.5)  # several expand ticks (every 0.1 s here)
        stored = await campaign_service.get(db, campaign.id)
        assert stored is not None and stored.stage == campaign_model.STAGE_NEW and fresh_service.received == []
        clock.set(start + timedelta(hours=2))
        await until(lambda: finished(db, campaign.id))
    assert await stats(db, campaign.id) == {"targeted": 5, "sent": 5, "delivered": 5}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
    assert {got.headers["ttl"] for got in fresh_service.received} == {str(24 * 3600)}  # counted from its send time
    heard = []
    for _ in range(20):  # get_message answers None for the subscribe confirmation too
        message = await announcements.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message is not None:
            heard.append(message["data"])
    assert heard.count(campaign.id) == 1
    await announcements.aclose()


def campaigns_admin() -> Any:
    from tests.push.test_fanout import ADMIN

    return ADMIN


def campaign_input(**changes: Any) -> campaign_model.CampaignInput:
    from dataclasses import replace

    from tests.push.test_fanout import TEXTS

    data = campaign_model.CampaignInput(title=dict(TEXTS), body={"zh-CN": "今晚 8 点", "en": "Tonight at 8"},
                                   district_ids=["huaqiangbei"], topics=["festivals"])
    return replace(data, **changes)


async def create_at(db: Any, clock: Clock, **changes: Any) -> campaign_model.Campaign:
    return await campaign_service.create(db, campaigns_admin(), campaign_input(**changes), now=clock.datetime)


async def test_quiet_hours_defer_until_eight_then_send_or_time_out(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    n = 6
    tokens = await add_subscribers(db, fresh_service, n)
    clock = Clock(shanghai(29, 23))
    cfg = config(quiet_hours=(22, 8))
    later = await create_at(db, clock, ttl=12 * 3600)  # still valid at 08:00 (until 11:00)
    short = await create_at(db, clock, ttl=2 * 3600)  # expires at 01:00
    urgent = await create_at(db, clock, urgency="high", ttl=3600)  # high urgency: quiet hours do not apply
    consumer = Consumer(db, redis, sender, name="night", config=cfg, clock=clock)
    async with running(consumer):
        async def night_done() -> bool:
            return (await stats(db, later.id)).get("deferred") == n and \
                (await stats(db, short.id)).get("deferred") == n and await finished(db, urgent.id)

        await until(night_done)
        assert await fanout.delivery_counts(db, later.id) == {"deferred": n}
        assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
        assert {json.loads(got.plaintext)["id"] for got in fresh_service.received} == {urgent.id}
        await asyncio.sleep(0.3)  # sweeps at 23:00 leave deferred messages alone
        assert len(fresh_service.received) == n
        clock.set(shanghai(30, 8))
        await until(lambda: finished(db, later.id))
        await until(lambda: finished(db, short.id))
    assert await stats(db, later.id) == {"targeted": n, "sent": n, "delivered": n, "deferred": n}
    assert await stats(db, short.id) == {"targeted": n, "timed_out": n, "deferred": n}
    assert await stats(db, urgent.id) == {"targeted": n, "sent": n, "delivered": n}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 2))
    morning = [got for got in fresh_service.received if json.loads(got.plaintext)["id"] == later.id]
    assert len(morning) == n and {got.headers["ttl"] for got in morning} == {str(3 * 3600)}  # 11:00 - 08:00


async def test_daily_cap_two_then_capped_and_a_new_day_resets(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    n = 4
    tokens = await add_subscribers(db, fresh_service, n)
    clock = Clock(shanghai(29, 12))
    cfg = config(daily_cap=2)
    consumer = Consumer(db, redis, sender, name="capped", config=cfg, clock=clock)
    async with running(consumer):
        first, second, third = [], [], []
        for bucket in (first, second, third):
            campaign = await create_at(db, clock)
            bucket.append(campaign.id)
            await until(lambda c=campaign.id: finished(db, c))
        clock.set(shanghai(30, 12))
        next_day = await create_at(db, clock)
        await until(lambda: finished(db, next_day.id))
    assert await stats(db, first[0]) == {"targeted": n, "sent": n, "delivered": n}
    assert await stats(db, second[0]) == {"targeted": n, "sent": n, "delivered": n}
    assert await stats(db, third[0]) == {"targeted": n, "capped": n}
    assert await fanout.delivery_counts(db, third[0]) == {"capped": n}
    assert await stats(db, next_day.id) == {"targeted": n, "sent": n, "delivered": n}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 3))
    sub_id = str((await db[SUBSCRIPTIONS].find_one({}))["_id"])
    assert await redis.get(policy.cap_key(sub_id, shanghai(29, 12).timestamp())) == "2"  # messages sent
    assert 0 < await redis.ttl(policy.cap_key(sub_id, shanghai(30, 12).timestamp())) <= policy.CAP_KEY_SECONDS


async def test_the_cap_counts_at_send_time_not_at_deferral(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    n = 3
    tokens = await add_subscribers(db, fresh_service, n)
    clock = Clock(shanghai(29, 23))
    cfg = config(daily_cap=1, quiet_hours=(22, 8))
    consumer = Consumer(db, redis, sender, name="cap-quiet", config=cfg, clock=clock)
    async with running(consumer):
        urgent = await create_at(db, clock, urgency="high")  # the 29th's one message
        held = await create_at(db, clock)  # deferred to the 30th: not counted on the 29th
        await until(lambda: finished(db, urgent.id))
        await until(lambda: _deferred(db, held.id, n))
        clock.set(shanghai(30, 8))
        await until(lambda: finished(db, held.id))
        clock.set(shanghai(30, 9))
        third = await create_at(db, clock)  # the 30th's second message: over the cap
        await until(lambda: finished(db, third.id))
    assert await stats(db, urgent.id) == {"targeted": n, "sent": n, "delivered": n}
    assert await stats(db, held.id) == {"targeted": n, "sent": n, "delivered": n, "deferred": n}
    assert await stats(db, third.id) == {"targeted": n, "capped": n}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 2))


async def test_a_message_that_fails_does_not_use_up_the_daily_allowance(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    n = 3
    tokens = await add_subscribers(db, fresh_service, n)
    clock = Clock(shanghai(29, 12))
    consumer = Consumer(db, redis, sender, name="cap-fail", config=config(daily_cap=1), clock=clock)
    async with running(consumer):
        fresh_service.answer(400, times=n)  # refused for good: "failed", never shown
        refused = await create_at(db, clock)
        await until(lambda: finished(db, refused.id))
        delivered = await create_at(db, clock)  # the day's one message
        await until(lambda: finished(db, delivered.id))
        over = await create_at(db, clock)
        await until(lambda: finished(db, over.id))
    assert await stats(db, refused.id) == {"targeted": n, "sent": n, "failed": n}
    assert await stats(db, delivered.id) == {"targeted": n, "sent": n, "delivered": n}
    assert await stats(db, over.id) == {"targeted": n, "capped": n}
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
    sub_id = str((await db[SUBSCRIPTIONS].find_one({}))["_id"])
    assert await redis.get(policy.cap_key(sub_id, shanghai(29, 12).timestamp())) == "1"


async def _deferred(db: Any, campaign_id: str, n: int) -> bool:
    return (await stats(db, campaign_id)).get("deferred") == n


async def test_sent_counts_each_subscriber_once_through_retries(
        db: Any, redis: Redis, fresh_service: PushService, sender: PushSender) -> None:
    n = 4
    tokens = await add_subscribers(db, fresh_service, n)
    fresh_service.answer(500, times=3)  # three POSTs fail, then every retry succeeds
    fresh_service.answer(429, headers={"Retry-After": "0"})
    campaign = await new_campaign(db)
    cfg: FanoutConfig = config(in_flight=1, backoff=0.05)
    async with running(Consumer(db, redis, sender, name="retrying", config=cfg)):
        await until(lambda: finished(db, campaign.id))
    got = await stats(db, campaign.id)
    assert got["delivered"] == n and got["sent"] == n and got["retried"] == 3 and got["rate_limited"] == 1
    assert fresh_service.requests >= n + 4
    assert per_token(fresh_service) == Counter(dict.fromkeys(tokens, 1))
    posted = [doc["posted"] async for doc in db[DELIVERIES].find({"campaign_id": campaign.id})]
    assert posted == [1] * n
