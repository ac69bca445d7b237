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
from server.domain.push import campaigns, policy, progress
from server.domain.push.campaigns import SENDING, Campaign
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.services.mongo import Doc

log = logging.getLogger("shangquan.push.fanout")

STREAM: Final = "push_batches"
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
    expand_every: float = 1.0  # a scheduled campaign starts within ~this long (plus a Mongo round trip)
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


async def enqueue(db: AsyncDatabase[Doc], redis: Redis, campaign_id: str, config: FanoutConfig = FanoutConfig(),
                  *, consumer: str = "", clock: Callable[[], float] = time.time) -> int | None:
    """Expand the audience onto the stream; None when the campaign is not (or no longer) this caller's to expand.

    The expansion is claimed by moving `stage` from "new" to "expanding"; one stuck in "expanding" for
    `stale_after` (its expander died) is claimed again.  Expanding twice only repeats batches, which the
    delivery records turn into no-ops.  The expander that finishes announces the campaign to the inbox.
    """
    now = clock()
    claim = await db[campaigns.COLLECTION].update_one(
        {"_id": campaign_id, "status": SENDING, "send_at_ts": {"$lte": now},
         "$or": [{"stage": campaigns.STAGE_NEW},
                 {"stage": campaigns.STAGE_EXPANDING, "expanding_ts": {"$lt": now - config.stale_after}}]},
        {"$set": {"stage": campaigns.STAGE_EXPANDING, "expanding_ts": now, "expander": consumer}})
    if claim.modified_count != 1:
        return None
    campaign = await campaigns.get(db, campaign_id)
    if campaign is None:
        return None
    await ensure_group(redis, config)
    targeted = 0
    batch: list[str] = []
    request_id = campaign.request_id or ""

    async def flush() -> None:
        await redis.xadd(config.stream, {"campaign_id": campaign_id, "request_id": request_id,
                                         "subscriptions": json.dumps(batch)})
        batch.clear()

    cursor = db[SUBSCRIPTIONS].find(
        campaigns.audience_filter(campaign.district_ids, campaign.topics, campaign.locales), {"_id": 1}).sort("_id", 1)
    async for doc in cursor:
        batch.append(str(doc["_id"]))
        targeted += 1
        if len(batch) >= config.batch_size:
            await flush()
    if batch:
        await flush()
    await db[campaigns.COLLECTION].update_one(
        {"_id": campaign_id}, {"$set": {"stage": campaigns.STAGE_EXPANDED, "stats.targeted": targeted}})
    await inbox.announce(redis, campaign_id)
    await progress.changed(redis, campaign_id)
    log.info("campaign %s: %d subscriptions queued", campaign_id, targeted,
             extra={"campaign_id": campaign_id, "request_id": campaign.request_id, "targeted": targeted})
    return targeted


async def expand_pending(db: AsyncDatabase[Doc], redis: Redis, config: FanoutConfig = FanoutConfig(), *,
                         consumer: str = "", clock: Callable[[], float] = time.time) -> int:
    """Expand every campaign whose send time has come and that nobody expanded (scheduled ones, a web process
    that stored one but died before enqueueing, a worker that died while expanding); returns how many."""
    now = clock()
    cursor = db[campaigns.COLLECTION].find(
        {"status": SENDING, "send_at_ts": {"$lte": now}, "$or": [{"stage": campaigns.STAGE_NEW},
                                    {"stage": campaigns.STAGE_EXPANDING,
                                     "expanding_ts": {"$lt": now - config.stale_after}}]}, {"_id": 1})
    expanded = 0
    for doc in [d async for d in cursor]:
        if await enqueue(db, redis, str(doc["_id"]), config, consumer=consumer, clock=clock) is not None:
            expanded += 1
    return expanded


async def start_if_due(db: AsyncDatabase[Doc], redis: Redis, campaign: Campaign) -> None:
    """Expand a just-stored (or just-approved) campaign at once instead of at a worker's next look, a second
    later.  The campaign is stored whatever happens here: any failure leaves the expansion to the workers."""
    if not campaign.due(time.time()):
        return
    try:
        await enqueue(db, redis, campaign.id, consumer="web")
    except Exception:  # Redis or MongoDB trouble: the worker's expand loop retries within a second
        log.warning("campaign %s: expansion left to the workers", campaign.id, exc_info=True)
