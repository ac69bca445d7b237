"""The first half of a campaign's fan-out: its audience, once its send time has come, onto the Redis Stream
`push_batches` in batches of subscription ids (see server/push/fanout.py for the consumers)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from server.domain.inbox import service as inbox
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_repository, policy
from server.domain.push import progress as live_progress
from server.domain.push.campaign import SENDING
from server.services.mongo import Doc

log = logging.getLogger("shangquan.push.fanout")

STREAM: Final = "push_batches"
EXPAND_PROGRESS_SECONDS: Final = 7 * 24 * 3600  # an expansion's resume point outlives any crash
GROUP: Final = "push-workers"


@dataclass(frozen=True, slots=True)
class FanoutConfig:
    stream: str = STREAM
    group: str = GROUP
    batch_size: int = 100
    reclaim_idle_ms: int = 60_000  # a stream entry unacknowledged this long is taken from its consumer
    stale_after: float = 60.0  # a "sending" claim older than this is retried (well above the send timeout)
    block_ms: int = 1000
    read_count: int = 4  # batches a consumer works on at once
    # POSTs whose outcome is not yet durably written, per consumer: the duplicate bound after a kill -9.
    in_flight: int = 100
    # Outcomes per bulk write.  Each POST keeps its slot until its group is written, so the group size does not
    # widen the duplicate window (in_flight bounds it); it trades Mongo round trips (2 per group: ~15 µs of
    # worker CPU per message at 20, half that at 50, measured by bench/push_fanout.py) against slots waiting
    # on a write: at 50 of 100 slots one group fills while the previous one is written.
    write_group: int = 50
    write_linger: float = 0.02  # a group not yet full is written after this long
    max_failures: int = 5  # 5xx/timeouts before a message is given up
    backoff: float = 5.0  # seconds before the first retry of a 5xx; doubles each time
    sweep_every: float = 1.0
    sweep_limit: int = 500
    expand_every: float = 1.0  # a campaign starts within ~this long of its send time (plus a Mongo round trip)
    expand_page: int = 20  # stream batches read per keyset page of the audience (the expander's memory bound)
    status_cache: float = 0.5  # how long a campaign's status (cancelled or not) is trusted
    quiet_hours: policy.QuietHours = None  # (start, end) Asia/Shanghai hours; the worker passes the setting
    daily_cap: int = 0  # messages per subscription per Asia/Shanghai day; 0: no cap

    @classmethod
    def from_settings(cls, settings: Any, **changes: Any) -> FanoutConfig:
        """The worker's config: quiet hours, daily cap and reclaim time from Settings."""
        reclaim = int(settings.push_reclaim_seconds)
        values: dict[str, Any] = {"reclaim_idle_ms": reclaim * 1000, "stale_after": float(reclaim),
                                  "quiet_hours": settings.push_quiet_hours, "daily_cap": int(settings.push_daily_cap)}
        values.update(changes)
        return cls(**values)


DEFAULT_CONFIG: Final = FanoutConfig()


async def ensure_group(redis: Redis, config: FanoutConfig) -> None:
    with contextlib.suppress(ResponseError):  # BUSYGROUP: another worker made it first
        await redis.xgroup_create(config.stream, config.group, id="0", mkstream=True)


def _progress_key(campaign_id: str) -> str:
    return f"push_expand:{campaign_id}"


async def enqueue(db: AsyncDatabase[Doc], redis: Redis, campaign_id: str, config: FanoutConfig = FanoutConfig(),
                  *, consumer: str = "", clock: Callable[[], float] = time.time) -> int | None:
    """Expand the audience onto the stream; None when the campaign is not (or no longer) this caller's to expand.

    Runs in the worker, never in a web request.  The expansion is claimed by moving `stage` from "new" to
    "expanding"; one whose expander has not been heard of for `stale_after` (it died) is claimed again.  The
    audience is read in keyset pages (`_id` > the last one queued), one page in memory at a time, and each
    batch goes onto the stream in one MULTI with the resume point (`push_expand:<id>`: the last id queued and
    how many), so an expander that dies anywhere resumes after the last batch it queued and queues none twice.
    A cancelled campaign stops expanding at its next page.  The expander that finishes announces the campaign
    to the inbox.
    """
    if not await campaign_repository.claim_expansion(db, campaign_id, clock(), config.stale_after, consumer):
        return None
    campaign = await campaign_repository.get(db, campaign_id)
    if campaign is None:
        return None
    await ensure_group(redis, config)
    key = _progress_key(campaign_id)
    progress: dict[Any, Any] = await redis.hgetall(key)
    after = _text(progress.get(b"after", progress.get("after", "")))
    queued = int(progress.get(b"queued", progress.get("queued", 0)) or 0)
    audience = campaign_model.audience_filter(campaign.district_ids, campaign.topics, campaign.locales)
    heard_of = clock()
    while True:
        page = await campaign_repository.audience_page(db, audience, after, config.batch_size * config.expand_page)
        if not page:
            break
        for start in range(0, len(page), config.batch_size):
            batch = page[start:start + config.batch_size]
            pipe = redis.pipeline(transaction=True)  # the batch and the resume point, or neither
            pipe.xadd(config.stream, {"campaign_id": campaign_id, "request_id": campaign.request_id or "",
                                      "subscriptions": json.dumps(batch)})
            pipe.hset(key, mapping={"after": batch[-1], "queued": queued + len(batch)})
            pipe.expire(key, EXPAND_PROGRESS_SECONDS)
            await pipe.execute()
            after, queued = batch[-1], queued + len(batch)
        if clock() - heard_of > config.stale_after / 4:  # still alive: nobody else takes the expansion over
            heard_of = clock()
            await campaign_repository.touch_expanding(db, campaign_id, heard_of)
        fresh = await campaign_repository.get(db, campaign_id)
        if fresh is None or fresh.status != SENDING:
            log.info("campaign %s: expansion stopped after %d subscriptions (cancelled)", campaign_id, queued,
                     extra={"campaign_id": campaign_id})
            break
    await campaign_repository.mark_expanded(db, campaign_id, queued)
    await redis.delete(key)
    await inbox.announce(redis, campaign_id)
    await live_progress.changed(redis, campaign_id)  # live campaignProgress: targeted is known
    log.info("campaign %s: %d subscriptions queued", campaign_id, queued,
             extra={"campaign_id": campaign_id, "request_id": campaign.request_id, "targeted": queued})
    return queued


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


async def expand_pending(db: AsyncDatabase[Doc], redis: Redis, config: FanoutConfig = FanoutConfig(), *,
                         consumer: str = "", clock: Callable[[], float] = time.time) -> int:
    """Expand every campaign whose send time has come and that nobody expanded (scheduled ones, a web process
    that stored one but died before enqueueing, a worker that died while expanding); returns how many."""
    expanded = 0
    for campaign_id in await campaign_repository.due_for_expansion(db, clock(), config.stale_after):
        if await enqueue(db, redis, campaign_id, config, consumer=consumer, clock=clock) is not None:
            expanded += 1
    return expanded
