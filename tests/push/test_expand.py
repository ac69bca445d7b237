"""Audience expansion in the worker: keyset pages, a resume point written with each batch, cancellation."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis

from server.domain.push import campaign_service
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.push import fanout
from tests.push.push_service import PushService
from tests.push.test_fanout import ADMIN, add_subscribers, config, new_campaign


class DiesAfter(Redis):
    """A worker's Redis connection that goes away after seven batches (its process was killed)."""

    left = 7

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        if self.left == 0:
            raise ConnectionError("the expander's process died")
        self.left -= 1
        return super().pipeline(transaction, shard_hint)


async def queued_ids(redis: Redis, stream: str) -> Counter[str]:
    entries: Any = await redis.xrange(stream)
    return Counter(sub for _, fields in entries for sub in json.loads(fields["subscriptions"]))


async def audience(db: Any) -> set[str]:
    return {str(d["_id"]) async for d in db[SUBSCRIPTIONS].find({"districts": "huaqiangbei"}, {"_id": 1})}


async def test_an_expander_killed_mid_way_is_resumed_where_it_stopped(db: Any, redis: Redis,
                                                                     push_service: PushService) -> None:
    await add_subscribers(db, push_service, 230)
    campaign = await new_campaign(db)
    cfg = config(batch_size=10, expand_page=2, stale_after=5.0)
    dying = DiesAfter(connection_pool=redis.connection_pool)  # the same server, through a process that dies
    with pytest.raises(ConnectionError):
        await fanout.enqueue(db, dying, campaign.id, cfg, consumer="dies")
    assert await redis.xlen(cfg.stream) == 7
    assert await fanout.enqueue(db, redis, campaign.id, cfg, consumer="heir") is None  # not stale yet
    taken = await fanout.enqueue(db, redis, campaign.id, cfg, consumer="heir",
                                 clock=lambda: time.time() + cfg.stale_after + 1)  # its expander went quiet
    assert taken == 230, taken
    queued = await queued_ids(redis, cfg.stream)
    assert set(queued) == await audience(db) and set(queued.values()) == {1}  # every one once, none twice
    assert await redis.xlen(cfg.stream) == 23  # 230 in batches of 10: no batch queued twice
    stored = await campaign_service.get(db, campaign.id)
    assert stored is not None and stored.stage == "expanded" and stored.stats["targeted"] == 230
    assert not await redis.exists(f"push_expand:{campaign.id}")  # the resume point is gone with the expansion


async def test_cancelling_stops_the_expansion(db: Any, redis: Redis, push_service: PushService) -> None:
    await add_subscribers(db, push_service, 120)
    campaign = await new_campaign(db)
    cfg = config(batch_size=10, expand_page=1)

    class CancelledAfterTwoBatches(Redis):
        """The operator cancels while the second batch is being queued."""

        batches = 0

        def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
            pipe = super().pipeline(transaction, shard_hint)
            execute = pipe.execute

            async def execute_then_cancel(raise_on_error: bool = True) -> Any:
                result = await execute(raise_on_error)
                self.batches += 1
                if self.batches == 2:
                    await campaign_service.cancel(db, ADMIN, campaign.id)
                return result

            pipe.execute = execute_then_cancel  # type: ignore[method-assign]
            return pipe

    queued = await fanout.enqueue(db, CancelledAfterTwoBatches(connection_pool=redis.connection_pool), campaign.id,
                                  cfg)
    assert queued == 20 and await redis.xlen(cfg.stream) == 2  # stopped at the next page
    stored = await campaign_service.get(db, campaign.id)
    assert stored is not None and stored.status == "cancelled" and stored.stats["targeted"] == 20
