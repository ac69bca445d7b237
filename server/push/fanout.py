"""Campaign fan-out over a Redis Stream: every subscriber gets the message, at most a bounded few twice.

1. `enqueue` (server/push/expand.py), in a worker's expand loop, expands a campaign's audience (once its send time
   has come) in keyset pages into batches of subscription ids on the stream `push_batches`, each with its resume
   point, then announces the campaign to the inbox.  The web process only stores the campaign (and wakes the loops).
2. `Consumer.run` (any number of workers, one consumer group) reads batches (server/push/reading.py), reclaims those
   a dead worker left unacknowledged, and *claims* each batch (server/push/claiming.py) with one
   `insert_many(ordered=False)` of delivery records `_id = "<campaign>:<subscription>"`: a duplicate key means
   another worker has that subscriber.  Records that need no POST are inserted in their final state (cancelled,
   skipped, timed_out) or as "deferred" (quiet hours, due when they end); the rest are "sending" claims.  The daily
   cap reserves a place in Redis just before sending ("capped" over it), given back unless delivered.  Outcomes
   are written with `bulk_write` in groups of `write_group`, with one `$inc` of the campaign's counters per group.
   A batch is acknowledged once every subscriber in it has a record, so a dead worker's batch is finished by
   another one.
3. The sweeper (server/push/sweeping.py) takes over records in "retry" or "deferred" whose time has come and
   "sending" claims older than `stale_after` (their worker died), with one `update_many` stamped with a lease token.
   A claim older than `stale_after / 4` is renewed (compare-and-set on `version`) before its POST, so a live worker
   loses a claim only when one POST and its write take longer than 3/4 of `stale_after` (45 s by default, against a
   10 s send timeout).  Finished batches are acknowledged and deleted from the stream (the records are the history).

Exactly-once is not possible over RFC 8030: a push service acknowledges a message only in the answer to its POST and
has no idempotency key, so a worker killed between a push service's 201 and the outcome write cannot know the
message went out.  The bound: a POST holds one of the consumer's `in_flight` slots (default 100) from before it is
sent until its outcome is durably written, so after a worker is killed at most `in_flight` messages (those it had
POSTed and not yet recorded at that moment) are sent a second time, when their stale claims are retried
`stale_after` later; nothing is ever lost. tests/push/test_worker_processes.py kills a worker mid-campaign and
asserts that bound (runs here saw 9-80).  A SIGTERM'd worker finishes what it holds, so it duplicates nothing.  The
PWA's service worker drops a push whose campaign id it has already shown, so the shopper sees it once.  A kill
between an outcome write and its `$inc` can leave the campaign's counters short by one group; the records stay
authoritative (`delivery_counts`).

Times the worker compares (`due`) are epoch seconds from the consumer's clock, so no datetime is ever `$set`
onto an existing document, and a test can run a campaign "at 23:00 Shanghai".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.domain.push import progress
from server.domain.push.campaign import FINAL_STATS, Campaign
from server.domain.push.campaign_service import WAKE_CHANNEL
from server.domain.push.delivery_repository import CLAIMED, DEFERRED, RETRY, Deliveries, delivery_counts, delivery_id
from server.domain.push.models import DELIVERIES
from server.push.campaign_cache import CampaignCache
from server.push.claiming import Claiming
from server.push.delivering import Delivering, HostNames, Job
from server.push.encode import EncodedMessage
from server.push.expand import (
    DEFAULT_CONFIG,
    GROUP,
    STREAM,
    FanoutConfig,
    enqueue,
    ensure_group,
    expand_pending,
)
from server.push.reading import StreamReader
from server.push.reconcile import reconcile
from server.push.sender import PushSender, SendResult
from server.push.sweeping import Sweeper
from server.services.availability import outage
from server.services.mongo import Doc

log = logging.getLogger("shangquan.push.fanout")
RECONCILE_EVERY: Final = 30.0  # seconds between recounts of campaigns a killed worker left short
# The expansion half lives in server/push/expand.py; callers reach it through this module too.
__all__ = ["CLAIMED", "DEFERRED", "DELIVERIES", "FINAL", "GROUP", "RETRY", "STREAM", "Consumer", "FanoutConfig",
           "consume", "delivery_counts", "delivery_id", "enqueue", "ensure_group", "expand_pending"]

FINAL: Final = FINAL_STATS  # a record's final states are the campaign's final counters


class Consumer:
    """One worker's share of the fan-out: reading, claiming, delivering and sweeping, run together.

    `send` is the seam a test can wrap, `clock` its idea of now."""

    def __init__(self, db: AsyncDatabase[Doc], redis: Redis, sender: PushSender, *, name: str,
                 config: FanoutConfig = DEFAULT_CONFIG, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.redis = redis
        self.sender = sender
        self.name = name
        self.config = config
        self.clock = clock
        deliveries = Deliveries(db)
        hosts = HostNames()
        self.campaigns = CampaignCache(db, config.status_cache)
        self.reader = StreamReader(redis, config, name)
        self.claiming = Claiming(deliveries, redis, name=name, config=config, clock=clock, hosts=hosts)
        self.delivering = Delivering(deliveries, redis, self.send, self.campaigns, name=name, config=config,
                                     clock=clock, hosts=hosts)
        self.sweeper = Sweeper(deliveries, self.delivering, name=name, config=config, clock=clock)
        self.deliveries = deliveries
        self._woken = asyncio.Event()

    async def send(self, message: EncodedMessage) -> SendResult:
        return await self.sender.send(message)

    async def campaign(self, campaign_id: str, *, fresh: bool = False) -> Campaign | None:
        return await self.campaigns.get(campaign_id, fresh=fresh)

    async def sweep(self) -> int:
        return await self.sweeper.sweep()

    # ---- loops

    async def run(self, stop: asyncio.Event) -> None:
        """Read, sweep and expand until `stop`; then finish the batches in hand and write their outcomes."""
        await ensure_group(self.redis, self.config)
        try:
            await asyncio.gather(self.reader.loop(stop, self.handle_entry),
                                 self._every(stop, self.config.sweep_every, self.sweep),
                                 self._every(stop, self.config.expand_every, self._expand, self._woken),
                                 self._listen_for_wakes(stop),
                                 self._every(stop, RECONCILE_EVERY, self._reconcile))
        finally:
            await self.delivering.drain()

    async def _expand(self) -> None:
        await expand_pending(self.db, self.redis, self.config, consumer=self.name, clock=self.clock)

    async def _reconcile(self) -> None:
        for campaign_id in await reconcile(self.db, now=self.clock()):
            log.warning("campaign %s: counters recounted from its delivery records", campaign_id,
                        extra={"campaign_id": campaign_id})
            await progress.changed(self.redis, campaign_id)  # the operators following it see the recount

    async def _listen_for_wakes(self, stop: asyncio.Event) -> None:
        """Campaigns the web process stored and that are due: expand now rather than at the next look."""
        while not stop.is_set():
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(WAKE_CHANNEL)
                    while not stop.is_set():
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                        if message is not None:
                            self._woken.set()
            except RedisError:  # the reader loop reports lost Redis; the expand loop still looks every second
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def _every(self, stop: asyncio.Event, seconds: float, work: Callable[[], Any],
                     woken: asyncio.Event | None = None) -> None:
        while not stop.is_set():
            try:
                await work()
            except RedisError as exc:
                outage("redis").down(exc)  # told once per outage, not once a second
                seconds_left = 1.0
            except Exception:
                log.exception("push consumer %s: %s failed; retrying in 1 s", self.name, work.__name__)
                seconds_left = 1.0
            else:
                seconds_left = seconds
            waits = [stop.wait()] if woken is None else [stop.wait(), woken.wait()]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(*waits), timeout=seconds_left)
            if woken is not None:
                woken.clear()

    async def read_once(self, *, block_ms: int | None = None) -> int:
        """Reclaim stale entries, else read new ones; handle them; returns how many entries were handled."""
        entries = await self.reader.read(self.config.read_count, block_ms=block_ms)
        for entry_id, fields in entries:
            await self.handle_entry(entry_id, fields)
        return len(entries)

    # ---- one batch

    async def handle_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        started = time.perf_counter()
        campaign_id = str(fields.get("campaign_id", ""))
        request_id = str(fields.get("request_id") or "") or None
        try:
            ids = [str(s) for s in json.loads(fields.get("subscriptions", "[]"))]
        except ValueError:
            ids = []
        tally: Counter[str] = Counter()
        campaign = await self.campaign(campaign_id, fresh=True) if campaign_id and ids else None
        if campaign is not None:
            subs = await self.deliveries.subscriptions(ids)
            claims = await self.claiming.claim(campaign, ids, subs, tally)
            claimed_at = time.monotonic()
            jobs = [Job(r, subs.get(str(r["subscription_id"])), claimed_at, tally) for r in claims]
            await self.delivering.send_jobs(jobs)
        await self.reader.done(entry_id)
        log.info("push batch %s of campaign %s: %d subscriptions", entry_id, campaign_id, len(ids),
                 extra={"job": "push_batch", "campaign_id": campaign_id, "request_id": request_id,
                        "batch_size": len(ids), "outcomes": dict(tally), "consumer": self.name,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def consume(db: AsyncDatabase[Doc], redis: Redis, sender: PushSender, consumer_name: str,
                  stop: asyncio.Event, config: FanoutConfig = DEFAULT_CONFIG) -> None:
    """The worker's push task: run one consumer until `stop` is set."""
    await Consumer(db, redis, sender, name=consumer_name, config=config).run(stop)
