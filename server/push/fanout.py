"""Campaign fan-out over a Redis Stream, sent exactly once per subscriber (but for one narrow window).

1. `enqueue` expands a campaign's audience into batches of subscription ids on the stream `push_batches`.
2. `Consumer.run` (any number of workers, one consumer group) reads batches, reclaims those a dead worker
   left unacknowledged, and for each subscription first *inserts* the delivery record
   `_id = "<campaign>:<subscription>"` in state "sending" — the claim: a duplicate key means someone else
   has it — then sends, then writes the outcome.  A batch is acknowledged once every subscription in it
   has a record, so a dead worker's batch is finished by another one and nothing is sent twice.
3. Records left in "sending" by a dead worker (claim older than `stale_after`) and records in "retry"
   whose time has come are taken over by the sweeper with a compare-and-set on `version`.

The one window left is a crash between a push service's 201 and the outcome write: that message is
sent again when its stale claim is retried (at least once, never lost).  Times the worker compares
(`due`) are epoch seconds, so no datetime is ever `$set` onto an existing document.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from server.domain.push import campaigns
from server.domain.push.campaigns import CANCELLED, SENDING, Campaign
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.domain.push.models import PushSubscription
from server.push.encode import EncodedMessage, EncodeError, encode
from server.push.sender import Outcome, PushSender, SendResult
from server.services.mongo import Doc

log = logging.getLogger("shangquan.push.fanout")

STREAM: Final = "push_batches"
GROUP: Final = "push-workers"
DELIVERIES: Final = "push_deliveries"

# Delivery record states: "sending" (claimed) and "retry" are picked up again by the sweeper; the rest are final.
CLAIMED: Final = "sending"
RETRY: Final = "retry"
FINAL: Final = ("delivered", "expired", "failed", "too_large", "blocked", "cancelled", "timed_out", "skipped")


@dataclass(frozen=True, slots=True)
class FanoutConfig:
    stream: str = STREAM
    group: str = GROUP
    batch_size: int = 100
    reclaim_idle_ms: int = 60_000  # a stream entry unacknowledged this long is taken from its consumer
    stale_after: float = 60.0  # a "sending" claim older than this is retried (well above the send timeout)
    block_ms: int = 1000
    read_count: int = 4
    batch_concurrency: int = 100  # sends in flight per batch (the sender bounds the total too)
    max_failures: int = 5  # 5xx/timeouts before a message is given up
    backoff: float = 5.0  # seconds before the first retry of a 5xx; doubles each time
    sweep_every: float = 1.0
    sweep_limit: int = 500
    expand_every: float = 2.0
    status_cache: float = 0.5  # how long a campaign's status (cancelled or not) is trusted


async def ensure_group(redis: Redis, config: FanoutConfig) -> None:
    with contextlib.suppress(ResponseError):  # BUSYGROUP: another worker made it first
        await redis.xgroup_create(config.stream, config.group, id="0", mkstream=True)


def audience_filter(campaign: Campaign) -> dict[str, Any]:
    return campaigns.audience_filter(campaign.district_ids, campaign.topics, campaign.locales)


async def enqueue(db: AsyncDatabase[Doc], redis: Redis, campaign_id: str, config: FanoutConfig = FanoutConfig(),
                  *, consumer: str = "", clock: Callable[[], float] = time.time) -> int | None:
    """Expand the audience onto the stream; None when the campaign is not (or no longer) this caller's to expand.

    The expansion is claimed by moving `stage` from "new" to "expanding"; one stuck in "expanding" for
    `stale_after` (its expander died) is claimed again.  Expanding twice only repeats batches, which the
    delivery records turn into no-ops.
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

    async def flush() -> None:
        await redis.xadd(config.stream, {"campaign_id": campaign_id, "subscriptions": json.dumps(batch)})
        batch.clear()

    cursor = db[SUBSCRIPTIONS].find(audience_filter(campaign), {"_id": 1}).sort("_id", 1)
    async for doc in cursor:
        batch.append(str(doc["_id"]))
        targeted += 1
        if len(batch) >= config.batch_size:
            await flush()
    if batch:
        await flush()
    await db[campaigns.COLLECTION].update_one(
        {"_id": campaign_id}, {"$set": {"stage": campaigns.STAGE_EXPANDED, "stats.targeted": targeted}})
    log.info("campaign %s: %d subscriptions queued", campaign_id, targeted)
    return targeted


async def expand_pending(db: AsyncDatabase[Doc], redis: Redis, config: FanoutConfig = FanoutConfig(), *,
                         consumer: str = "", clock: Callable[[], float] = time.time) -> int:
    """Expand every campaign still waiting (a web process that stored one but died before enqueueing, or a
    worker that died while expanding); returns how many this call expanded."""
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


def delivery_id(campaign_id: str, subscription_id: str) -> str:
    return f"{campaign_id}:{subscription_id}"


class Consumer:
    """One worker's share of the fan-out; `send` is the seam a test can wrap."""

    def __init__(self, db: AsyncDatabase[Doc], redis: Redis, sender: PushSender, *, name: str,
                 config: FanoutConfig = FanoutConfig(), clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.redis = redis
        self.sender = sender
        self.name = name
        self.config = config
        self.clock = clock
        self._campaigns: dict[str, tuple[float, Campaign | None]] = {}

    async def send(self, message: EncodedMessage) -> SendResult:
        return await self.sender.send(message)

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        await ensure_group(self.redis, config)
        next_sweep = next_expand = 0.0
        while not stop.is_set():
            try:
                now = self.clock()
                if now >= next_expand:
                    next_expand = now + config.expand_every
                    await expand_pending(self.db, self.redis, config, consumer=self.name, clock=self.clock)
                if now >= next_sweep:
                    next_sweep = now + config.sweep_every
                    await self.sweep()
                await self.read_once(block_ms=config.block_ms)
            except RedisError as exc:
                log.warning("push consumer %s lost Redis (%s); retrying in 1 s", self.name, exc)
                await asyncio.sleep(1)
                with contextlib.suppress(RedisError):
                    await ensure_group(self.redis, config)
            except Exception:  # a batch that failed stays pending and is reclaimed later
                log.exception("push consumer %s failed; retrying in 1 s", self.name)
                await asyncio.sleep(1)

    async def read_once(self, *, block_ms: int | None = None) -> int:
        """Reclaim stale entries, else read new ones; handle them; returns how many entries were handled."""
        config = self.config
        claimed: Any = await self.redis.xautoclaim(config.stream, config.group, self.name, config.reclaim_idle_ms,
                                                   "0-0", count=config.read_count)
        entries: list[Any] = [e for e in claimed[1] if e] if claimed else []
        if not entries:
            read: Any = await self.redis.xreadgroup(config.group, self.name, {config.stream: ">"},
                                                    count=config.read_count, block=block_ms)
            entries = [entry for _, stream_entries in read or [] for entry in stream_entries]
        for entry_id, fields in entries:
            await self.handle_entry(entry_id, fields or {})
        return len(entries)

    async def handle_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        campaign_id = str(fields.get("campaign_id", ""))
        try:
            ids = [str(s) for s in json.loads(fields.get("subscriptions", "[]"))]
        except ValueError:
            ids = []
        campaign = await self.campaign(campaign_id, fresh=True) if campaign_id and ids else None
        if campaign is not None:
            subs = {str(d["_id"]): d async for d in self.db[SUBSCRIPTIONS].find({"_id": {"$in": ids}})}
            gate = asyncio.Semaphore(self.config.batch_concurrency)
            async with asyncio.TaskGroup() as group:
                for sub_id in ids:
                    group.create_task(self._first_attempt(gate, campaign_id, sub_id, subs.get(sub_id)))
        await self.redis.xack(self.config.stream, self.config.group, entry_id)

    async def campaign(self, campaign_id: str, *, fresh: bool = False) -> Campaign | None:
        now = self.clock()
        cached = self._campaigns.get(campaign_id)
        if fresh or cached is None or cached[0] < now:
            if len(self._campaigns) > 1000:
                self._campaigns.clear()
            cached = self._campaigns[campaign_id] = (now + self.config.status_cache,
                                                     await campaigns.get(self.db, campaign_id))
        return cached[1]

    async def _first_attempt(self, gate: asyncio.Semaphore, campaign_id: str, sub_id: str,
                             sub: dict[str, Any] | None) -> None:
        async with gate:
            record = {"_id": delivery_id(campaign_id, sub_id), "campaign_id": campaign_id,
                      "subscription_id": sub_id, "state": CLAIMED, "by": self.name,
                      "due": self.clock() + self.config.stale_after, "version": 1, "tries": 0, "failures": 0}
            try:
                await self.db[DELIVERIES].insert_one(record)
            except DuplicateKeyError:
                return  # handled, or being handled, elsewhere; a stale claim is the sweeper's
            await self._attempt(record, sub)

    async def _attempt(self, record: dict[str, Any], sub_doc: dict[str, Any] | None) -> None:
        """Send one claimed record (version = record["version"]) and store the outcome."""
        campaign = await self.campaign(str(record["campaign_id"]))
        if campaign is None or campaign.status == CANCELLED:
            await self._finish(record, "cancelled")
            return
        if sub_doc is None:
            await self._finish(record, "skipped")  # unsubscribed since the batch was queued
            return
        ttl = int(campaign.expires_ts - self.clock())
        if ttl <= 0:
            await self._finish(record, "timed_out")
            return
        sub = PushSubscription.from_doc(sub_doc)
        try:
            message = encode(sub.target(), campaign.payload(sub.locale), ttl=ttl, urgency=campaign.urgency,
                             topic=campaign.collapse_topic)
        except EncodeError:
            await self._finish(record, "failed")
            return
        result = await self.send(message)
        outcome = result.outcome
        if outcome is Outcome.DELIVERED:
            await self._finish(record, "delivered")
        elif outcome is Outcome.EXPIRED:
            await self.db[SUBSCRIPTIONS].delete_one({"_id": sub.id})
            await self._finish(record, "expired")
        elif outcome is Outcome.RATE_LIMITED:
            wait = result.retry_after if result.retry_after is not None else 60.0
            await self._retry(record, wait, "rate_limited", failed=False)
        elif outcome is Outcome.RETRYABLE:
            failures = int(record.get("failures") or 0) + 1
            if failures >= self.config.max_failures:
                await self._finish(record, "failed")
            else:
                await self._retry(record, self.config.backoff * 2 ** (failures - 1), "retried", failed=True)
        elif outcome is Outcome.TOO_LARGE:
            await self._finish(record, "too_large")
        elif outcome is Outcome.BLOCKED:
            await self._finish(record, "blocked")
        else:
            await self._finish(record, "failed")

    async def _write(self, record: dict[str, Any], change: dict[str, Any], counter: str) -> bool:
        """Compare-and-set on version; the campaign counter moves only for the writer that won."""
        result = await self.db[DELIVERIES].update_one({"_id": record["_id"], "version": record["version"]}, change)
        if result.modified_count != 1:
            return False
        await self.db[campaigns.COLLECTION].update_one({"_id": record["campaign_id"]},
                                                       {"$inc": {f"stats.{counter}": 1}})
        return True

    async def _finish(self, record: dict[str, Any], state: str) -> None:
        await self._write(record, {"$set": {"state": state, "by": self.name}, "$inc": {"version": 1, "tries": 1}},
                          state)

    async def _retry(self, record: dict[str, Any], wait: float, counter: str, *, failed: bool) -> None:
        await self._write(record, {"$set": {"state": RETRY, "due": self.clock() + max(0.0, wait), "by": self.name},
                                   "$inc": {"version": 1, "tries": 1, "failures": 1 if failed else 0}}, counter)

    async def sweep(self) -> int:
        """Take over due retries and stale claims; returns how many were attempted."""
        now = self.clock()
        cursor = self.db[DELIVERIES].find({"state": {"$in": [CLAIMED, RETRY]}, "due": {"$lte": now}})
        records = [r async for r in cursor.limit(self.config.sweep_limit)]
        if not records:
            return 0
        taken: list[dict[str, Any]] = []
        for record in records:
            result = await self.db[DELIVERIES].update_one(
                {"_id": record["_id"], "version": record["version"], "state": record["state"]},
                {"$set": {"state": CLAIMED, "by": self.name, "due": now + self.config.stale_after},
                 "$inc": {"version": 1}})
            if result.modified_count == 1:
                taken.append({**record, "state": CLAIMED, "version": int(record["version"]) + 1})
        await self._attempt_all(taken)
        return len(taken)

    async def _attempt_all(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        ids = sorted({str(r["subscription_id"]) for r in records})
        subs = {str(d["_id"]): d async for d in self.db[SUBSCRIPTIONS].find({"_id": {"$in": ids}})}
        gate = asyncio.Semaphore(self.config.batch_concurrency)

        async def one(record: dict[str, Any]) -> None:
            async with gate:
                await self._attempt(record, subs.get(str(record["subscription_id"])))

        async with asyncio.TaskGroup() as group:
            for record in records:
                group.create_task(one(record))


async def consume(db: AsyncDatabase[Doc], redis: Redis, sender: PushSender, consumer_name: str,
                  stop: asyncio.Event, config: FanoutConfig = FanoutConfig()) -> None:
    """The worker's push task: run one consumer until `stop` is set."""
    await Consumer(db, redis, sender, name=consumer_name, config=config).run(stop)


async def delivery_counts(db: AsyncDatabase[Doc], campaign_id: str) -> dict[str, int]:
    """Records per state, counted from the records themselves (the authoritative, slower twin of `stats`)."""
    counts: dict[str, int] = {}
    async for doc in db[DELIVERIES].find({"campaign_id": campaign_id}, {"state": 1}):
        state = str(doc.get("state"))
        counts[state] = counts.get(state, 0) + 1
    return counts
