"""Campaign fan-out over a Redis Stream: every subscriber gets the message, at most a bounded few twice.

1. `enqueue` (server/push/expand.py) expands a campaign's audience (once its send time has come) into batches
   of subscription ids on the stream `push_batches`, then announces the campaign to the inbox.
2. `Consumer.run` (any number of workers, one consumer group) reads batches, reclaims those a dead worker left
   unacknowledged, and *claims* each batch with one `insert_many(ordered=False)` of delivery records
   `_id = "<campaign>:<subscription>"`: a duplicate key means another worker has that subscriber.  Records
   that need no POST are inserted in their final state (cancelled, skipped, timed_out) or as "deferred" (quiet
   hours, due when they end); the rest are "sending" claims.  The daily cap is counted in Redis just before
   sending ("capped" over it).  Outcomes are written with `bulk_write` in groups of `write_group`, with one
   `$inc` of the campaign's counters per group.  A batch is acknowledged once every subscriber in it has a
   record, so a dead worker's batch is finished by another one.
3. The sweeper takes over records in "retry" or "deferred" whose time has come and "sending" claims older than
   `stale_after` (their worker died), with one `update_many` stamped with a lease token.  A claim older than
   `stale_after / 4` is renewed (compare-and-set on `version`) before its POST, so a live worker loses a claim
   only when one POST and its write take longer than 3/4 of `stale_after` (45 s by default, against a 10 s
   send timeout).  Finished batches are acknowledged and deleted from the stream (the records are the history).

Exactly-once is not possible over RFC 8030: a push service acknowledges a message only in the answer to its
POST and has no idempotency key, so a worker killed between a push service's 201 and the outcome write cannot
know the message went out.  The bound: a POST holds one of the consumer's `in_flight` slots (default 100) from
before it is sent until its outcome is durably written, so after a worker is killed at most `in_flight`
messages (those it had POSTed and not yet recorded at that moment) are sent a second time, when their stale
claims are retried `stale_after` later; nothing is ever lost.
tests/push/test_worker_processes.py kills a worker mid-campaign and asserts that bound (runs here saw 9-80).  A
SIGTERM'd worker finishes what it holds, so it duplicates nothing.  The PWA's service worker drops a push whose campaign
id it has already shown, so the shopper sees it once.  A kill between an outcome write and its `$inc` can
leave the campaign's counters short by one group; the records stay authoritative (`delivery_counts`).

Times the worker compares (`due`) are epoch seconds from the consumer's clock, so no datetime is ever `$set`
onto an existing document, and a test can run a campaign "at 23:00 Shanghai".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.domain.push import campaigns, policy, progress
from server.domain.push.campaigns import CANCELLED, Campaign
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.domain.push.models import DELIVERIES, WAITING
from server.observability.metrics import count_push
from server.push.encode import EncodedMessage, EncodeError, Subscription, encode
from server.push.expand import (
    DEFAULT_CONFIG,
    GROUP,
    STREAM,
    FanoutConfig,
    enqueue,
    ensure_group,
    expand_pending,
)
from server.push.groups import GroupWriter
from server.push.reconcile import reconcile
from server.push.sender import Outcome, PushSender, SendResult
from server.services.availability import outage
from server.services.mongo import Doc

log = logging.getLogger("shangquan.push.fanout")
RECONCILE_EVERY: Final = 30.0  # seconds between recounts of campaigns a killed worker left short
# The expansion half lives in server/push/expand.py; callers reach it through this module too.
__all__ = ["DELIVERIES", "FINAL", "GROUP", "STREAM", "Consumer", "FanoutConfig", "consume",
           "delivery_counts", "delivery_id", "enqueue", "ensure_group", "expand_pending"]


# Delivery record states: "sending" (claimed), "retry" and "deferred" are picked up again by the sweeper.
CLAIMED, RETRY, DEFERRED = WAITING
SUB_FIELDS: Final = {"endpoint": 1, "keys": 1, "locale": 1, "origin": 1}  # what a send needs of a subscription
FINAL: Final = campaigns.FINAL_STATS  # a record's final states are the campaign's final counters


def delivery_id(campaign_id: str, subscription_id: str) -> str:
    return f"{campaign_id}:{subscription_id}"


@dataclass(slots=True)
class _Job:
    """A claimed record about to be sent; `leased_at` (monotonic) tells when its claim was last written."""
    record: dict[str, Any]
    sub: dict[str, Any] | None
    leased_at: float
    tally: Counter[str]
    counted_now: bool = False  # its daily-cap counter was incremented by this attempt


@dataclass(slots=True)
class _Result:
    """One record's outcome, written in a group: its `state` (final, "retry" or "deferred"), the campaign
    counters it moves, and `label`, what the batch log and the metrics call it."""
    record: dict[str, Any]
    state: str
    label: str
    host: str
    tally: Counter[str]
    counters: dict[str, int] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    posted: bool = False
    failed: bool = False
    delete_subscription: str | None = None


class Consumer:
    """One worker's share of the fan-out; `send` is the seam a test can wrap, `clock` its idea of now."""

    def __init__(self, db: AsyncDatabase[Doc], redis: Redis, sender: PushSender, *, name: str,
                 config: FanoutConfig = DEFAULT_CONFIG, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.redis = redis
        self.sender = sender
        self.name = name
        self.config = config
        self.clock = clock
        self._campaigns: dict[str, tuple[float, Campaign | None]] = {}
        self._loading: dict[str, asyncio.Task[Campaign | None]] = {}
        self._payloads: dict[tuple[str, str], bytes] = {}
        self._slots = asyncio.Semaphore(config.in_flight)
        self._writer = GroupWriter[_Result](self._store, config.write_group, config.write_linger)
        self._hosts: dict[str, str] = {}

    async def send(self, message: EncodedMessage) -> SendResult:
        return await self.sender.send(message)

    # ---- loops

    async def run(self, stop: asyncio.Event) -> None:
        """Read, sweep and expand until `stop`; then finish the batches in hand and write their outcomes."""
        await ensure_group(self.redis, self.config)
        try:
            await asyncio.gather(self._read_loop(stop),
                                 self._every(stop, self.config.sweep_every, self.sweep),
                                 self._every(stop, self.config.expand_every, self._expand),
                                 self._every(stop, RECONCILE_EVERY, self._reconcile))
        finally:
            await self._writer.drain()

    async def _expand(self) -> None:
        await expand_pending(self.db, self.redis, self.config, consumer=self.name, clock=self.clock)

    async def _reconcile(self) -> None:
        for campaign_id in await reconcile(self.db, now=self.clock()):
            log.warning("campaign %s: counters recounted from its delivery records", campaign_id,
                        extra={"campaign_id": campaign_id})

    async def _every(self, stop: asyncio.Event, seconds: float, work: Callable[[], Any]) -> None:
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds_left)

    async def _read_loop(self, stop: asyncio.Event) -> None:
        """Keeps up to `read_count` batches in hand; on stop, takes no new ones and finishes those."""
        active: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                free = self.config.read_count - len(active)
                if free <= 0:
                    await asyncio.wait(active, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    entries = await self._read(free, block_ms=50 if active else self.config.block_ms)
                except RedisError as exc:
                    outage("redis").down(exc)  # told once per outage, not once a second
                    await asyncio.sleep(1)
                    with contextlib.suppress(RedisError):
                        await ensure_group(self.redis, self.config)
                    continue
                for entry_id, fields in entries:
                    task = asyncio.create_task(self._guarded(entry_id, fields))
                    active.add(task)
                    task.add_done_callback(active.discard)
                if not entries and active:
                    await asyncio.wait(active, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if active:
                await asyncio.gather(*active, return_exceptions=True)

    async def _guarded(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            await self.handle_entry(entry_id, fields)
        except Exception:  # the entry stays pending and is reclaimed later
            log.exception("push consumer %s failed on batch %s", self.name, entry_id)

    async def _read(self, count: int, *, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        config = self.config
        claimed: Any = await self.redis.xautoclaim(config.stream, config.group, self.name, config.reclaim_idle_ms,
                                                   "0-0", count=count)
        entries: list[Any] = [e for e in claimed[1] if e] if claimed else []
        if not entries:
            read: Any = await self.redis.xreadgroup(config.group, self.name, {config.stream: ">"},
                                                    count=count, block=block_ms)
            entries = [entry for _, stream_entries in read or [] for entry in stream_entries]
        return [(str(entry_id), dict(fields or {})) for entry_id, fields in entries]

    async def read_once(self, *, block_ms: int | None = None) -> int:
        """Reclaim stale entries, else read new ones; handle them; returns how many entries were handled."""
        entries = await self._read(self.config.read_count, block_ms=block_ms)
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
            subs = await self._subscriptions(ids)
            now = self.clock()
            fresh = [self._new_record(campaign, sub_id, subs.get(sub_id), now) for sub_id in ids]
            mine = await self._claim(fresh)
            if len(mine) < len(fresh):
                tally["claimed_elsewhere"] += len(fresh) - len(mine)
            claimed_at = time.monotonic()
            settled = [r for r in mine if r["state"] != CLAIMED]
            if settled:
                await self._count_inserted(campaign_id, settled, subs, tally)
            jobs = [_Job(r, subs.get(str(r["subscription_id"])), claimed_at, tally)
                    for r in mine if r["state"] == CLAIMED]
            await self._send_jobs(jobs)
        await self._done(entry_id)
        log.info("push batch %s of campaign %s: %d subscriptions", entry_id, campaign_id, len(ids),
                 extra={"job": "push_batch", "campaign_id": campaign_id, "request_id": request_id,
                        "batch_size": len(ids), "outcomes": dict(tally), "consumer": self.name,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1)})

    async def _done(self, entry_id: str) -> None:
        """Acknowledge a finished batch and delete it: the delivery records hold what happened, and a stream
        whose handled entries stayed would grow by a few MB per large campaign forever."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.config.stream, self.config.group, entry_id)
        pipe.xdel(self.config.stream, entry_id)
        await pipe.execute()

    def _new_record(self, campaign: Campaign, sub_id: str, sub: dict[str, Any] | None, now: float) -> dict[str, Any]:
        record: dict[str, Any] = {
            "_id": delivery_id(campaign.id, sub_id), "campaign_id": campaign.id, "subscription_id": sub_id,
            "state": CLAIMED, "by": self.name, "due": now + self.config.stale_after, "version": 1, "tries": 0,
            "failures": 0, "posted": 0, "counted": 0, "deferred": 0, "at": now}
        if campaign.status == CANCELLED:
            record["state"] = "cancelled"
        elif sub is None:
            record["state"] = "skipped"  # unsubscribed since the batch was queued
        elif int(campaign.expires_ts - now) <= 0:
            record["state"] = "timed_out"
        elif (until := policy.defer_until(self.config.quiet_hours, campaign.urgency, now)) is not None:
            record.update(state=DEFERRED, due=until, deferred=1)
        return record

    async def _claim(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the records; those whose _id exists already are someone else's."""
        if not records:
            return []
        try:
            await self.db[DELIVERIES].insert_many(records, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(int(e.get("code", 0)) != 11000 for e in errors):
                raise
            taken = {int(e["index"]) for e in errors}
            return [r for i, r in enumerate(records) if i not in taken]
        return records

    async def _count_inserted(self, campaign_id: str, records: Sequence[dict[str, Any]],
                              subs: dict[str, dict[str, Any]], tally: Counter[str]) -> None:
        counters: Counter[str] = Counter()
        metrics: Counter[tuple[str, str]] = Counter()
        for record in records:
            state = str(record["state"])
            counters[state] += 1
            metrics[(state, self._host_of(subs.get(str(record["subscription_id"]))))] += 1
        tally.update(counters)
        for (label, host), n in metrics.items():
            count_push(label, host, n)
        await self.db[campaigns.COLLECTION].update_one(
            {"_id": campaign_id}, {"$inc": {f"stats.{name}": n for name, n in counters.items()}})
        await progress.changed(self.redis, campaign_id)  # live campaignProgress (coalesced by the web hubs)

    async def campaign(self, campaign_id: str, *, fresh: bool = False) -> Campaign | None:
        """The campaign, re-read at most every `status_cache` seconds (one read however many sends ask)."""
        cached = self._campaigns.get(campaign_id)
        if not fresh and cached is not None and cached[0] >= time.monotonic():
            return cached[1]
        loading = self._loading.get(campaign_id)
        if loading is None:
            loading = self._loading[campaign_id] = asyncio.create_task(self._load(campaign_id))
            loading.add_done_callback(lambda _: self._loading.pop(campaign_id, None))
        return await asyncio.shield(loading)

    async def _load(self, campaign_id: str) -> Campaign | None:
        campaign = await campaigns.get(self.db, campaign_id)
        if len(self._campaigns) > 1000:
            self._campaigns.clear()
            self._payloads.clear()
        self._campaigns[campaign_id] = (time.monotonic() + self.config.status_cache, campaign)
        return campaign

    def _payload(self, campaign: Campaign, locale: str) -> bytes:
        key = (campaign.id, locale)
        payload = self._payloads.get(key)
        if payload is None:
            payload = self._payloads[key] = campaign.payload(locale)
        return payload

    async def _subscriptions(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        cursor = self.db[SUBSCRIPTIONS].find({"_id": {"$in": ids}}, SUB_FIELDS)
        return {str(d["_id"]): d async for d in cursor}

    def _host_of(self, sub: dict[str, Any] | None) -> str:
        origin = str(sub.get("origin") or "") if sub else ""
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = (urlsplit(origin).hostname or "unknown") if origin else "unknown"
        return host

    # ---- sending

    async def _send_jobs(self, jobs: Sequence[_Job]) -> None:
        """Settle what needs no POST, count the daily cap, then send the rest `in_flight` at a time."""
        if not jobs:
            return
        now = self.clock()
        ready: list[_Job] = []
        settled: list[_Result] = []
        for job in jobs:
            result = await self._precheck(job, now)
            if result is None:
                ready.append(job)
            else:
                settled.append(result)
        if self.config.daily_cap > 0:
            ready = await self._apply_cap(ready, now, settled)
        if settled:
            await self._store(settled)
        async with asyncio.TaskGroup() as group:
            for job in ready:
                group.create_task(self._attempt(job))

    async def _precheck(self, job: _Job, now: float) -> _Result | None:
        record = job.record
        campaign = await self.campaign(str(record["campaign_id"]))
        if campaign is None or campaign.status == CANCELLED:
            return self._final(job, "cancelled")
        if job.sub is None:
            return self._final(job, "skipped")
        if int(campaign.expires_ts - now) <= 0:
            return self._final(job, "timed_out")
        until = policy.defer_until(self.config.quiet_hours, campaign.urgency, now)
        if until is not None:  # counted once per message, however often it is held back
            counters = {} if record.get("deferred") else {"deferred": 1}
            return _Result(record, DEFERRED, DEFERRED, self._host_of(job.sub), job.tally, counters,
                           {"due": until, "deferred": 1})
        return None

    async def _apply_cap(self, jobs: list[_Job], now: float, settled: list[_Result]) -> list[_Job]:
        """INCR + EXPIRE per subscription and local day, in one pipeline; over the cap is final ("capped")."""
        counting = [job for job in jobs if not job.record.get("counted")]
        if not counting:
            return jobs
        pipe = self.redis.pipeline(transaction=False)
        for job in counting:
            key = policy.cap_key(str(job.record["subscription_id"]), now)
            pipe.incr(key)
            pipe.expire(key, policy.CAP_KEY_SECONDS)
        replies: list[Any] = await pipe.execute()
        over: set[int] = set()
        for job, count in zip(counting, replies[0::2], strict=True):
            job.counted_now = True
            if int(count) > self.config.daily_cap:
                over.add(id(job))
                settled.append(self._final(job, "capped"))
        return [job for job in jobs if id(job) not in over]

    def _final(self, job: _Job, state: str) -> _Result:
        result = _Result(job.record, state, state, self._host_of(job.sub), job.tally, {state: 1})
        if job.counted_now:
            result.fields["counted"] = 1
        return result

    async def _attempt(self, job: _Job) -> None:
        async with self._slots:
            result = await self._attempt_in_slot(job)
            if result is not None:
                await self._writer.put(result)  # the slot is held until the outcome is durable

    async def _attempt_in_slot(self, job: _Job) -> _Result | None:
        record = job.record
        campaign = await self.campaign(str(record["campaign_id"]))
        if campaign is None or campaign.status == CANCELLED:
            return self._final(job, "cancelled")
        ttl = int(campaign.expires_ts - self.clock())
        if ttl <= 0:
            return self._final(job, "timed_out")
        if time.monotonic() - job.leased_at > self.config.stale_after / 4 and not await self._renew(job):
            job.tally["lost_claim"] += 1
            return None  # taken over by another worker's sweeper: it sends
        assert job.sub is not None
        sub = job.sub
        try:
            target = Subscription(str(sub["endpoint"]), str(sub["keys"]["p256dh"]), str(sub["keys"]["auth"]))
            message = encode(target, self._payload(campaign, str(sub.get("locale") or "")), ttl=ttl,
                             urgency=campaign.urgency, topic=campaign.collapse_topic)
        except (EncodeError, KeyError, TypeError):
            return self._final(job, "failed")
        sent = await self.send(message)
        return self._outcome(job, sent, str(sub["_id"]))

    async def _renew(self, job: _Job) -> bool:
        """Push a claim's staleness out before a late POST (compare-and-set, so a takeover wins or loses whole)."""
        record = job.record
        renewed = await self.db[DELIVERIES].update_one(
            {"_id": record["_id"], "version": record["version"], "state": CLAIMED},
            {"$set": {"due": self.clock() + self.config.stale_after}, "$inc": {"version": 1}})
        if renewed.modified_count != 1:
            return False
        record["version"] = int(record["version"]) + 1
        job.leased_at = time.monotonic()
        return True

    def _outcome(self, job: _Job, sent: SendResult, sub_id: str) -> _Result:
        outcome = sent.outcome
        if outcome is Outcome.DELIVERED:
            result = self._final(job, "delivered")
        elif outcome is Outcome.EXPIRED:
            result = self._final(job, "expired")
            result.delete_subscription = sub_id
        elif outcome is Outcome.RATE_LIMITED:
            wait = sent.retry_after if sent.retry_after is not None else 60.0
            result = self._retry(job, wait, "rate_limited")
        elif outcome is Outcome.RETRYABLE:
            failures = int(job.record.get("failures") or 0) + 1
            if failures >= self.config.max_failures:
                result = self._final(job, "failed")
            else:
                result = self._retry(job, self.config.backoff * 2 ** (failures - 1), "retried")
            result.failed = True
        elif outcome is Outcome.TOO_LARGE:
            result = self._final(job, "too_large")
        elif outcome is Outcome.BLOCKED:
            result = self._final(job, "blocked")
        else:
            result = self._final(job, "failed")
        if sent.posted:
            result.posted = True
            if not job.record.get("posted"):
                result.counters["sent"] = 1
                result.fields["posted"] = 1
        return result

    def _retry(self, job: _Job, wait: float, counter: str) -> _Result:
        result = _Result(job.record, RETRY, counter, self._host_of(job.sub), job.tally, {counter: 1},
                         {"due": self.clock() + max(0.0, wait)})
        if job.counted_now:
            result.fields["counted"] = 1
        return result

    # ---- writing outcomes

    async def _store(self, results: list[_Result]) -> None:
        """One bulk_write of compare-and-sets on `version`; counters move only for the writes that won."""
        token = uuid.uuid4().hex
        now = self.clock()
        ops = []
        for r in results:
            change: dict[str, Any] = {
                "$set": {"state": r.state, "by": self.name, "write": token, "at": now, **r.fields},
                "$inc": {"version": 1, "tries": 1 if r.posted else 0, "failures": 1 if r.failed else 0}}
            ops.append(UpdateOne({"_id": r.record["_id"], "version": r.record["version"]}, change))
        written = await self.db[DELIVERIES].bulk_write(ops, ordered=False)
        won = results
        if written.modified_count != len(ops):  # someone took some over: find which writes are ours
            ids = [r.record["_id"] for r in results]
            ours = {d["_id"] async for d in self.db[DELIVERIES].find({"_id": {"$in": ids}, "write": token},
                                                                     {"_id": 1})}
            won = [r for r in results if r.record["_id"] in ours]
        for r in won:
            r.record["version"] = int(r.record["version"]) + 1
        await self._count(won)
        gone = [r.delete_subscription for r in won if r.delete_subscription]
        if gone:
            await self.db[SUBSCRIPTIONS].delete_many({"_id": {"$in": gone}})

    async def _count(self, results: Iterable[_Result]) -> None:
        by_campaign: dict[str, Counter[str]] = {}
        metrics: Counter[tuple[str, str]] = Counter()
        for r in results:
            counters = {name: n for name, n in r.counters.items() if n}
            by_campaign.setdefault(str(r.record["campaign_id"]), Counter()).update(counters)
            r.tally[r.label] += 1
            metrics[(r.label, r.host)] += 1
        for (label, host), n in metrics.items():
            count_push(label, host, n)
        for campaign_id, counters in by_campaign.items():
            if counters:
                await self.db[campaigns.COLLECTION].update_one(
                    {"_id": campaign_id}, {"$inc": {f"stats.{name}": n for name, n in counters.items()}})
                await progress.changed(self.redis, campaign_id)  # live campaignProgress (coalesced by the web hubs)

    # ---- the sweeper

    async def sweep(self) -> int:
        """Take over due retries, deferred messages and stale claims; returns how many were attempted."""
        now = self.clock()
        query = {"state": {"$in": list(WAITING)}, "due": {"$lte": now}}
        ids = [d["_id"] async for d in self.db[DELIVERIES].find(query, {"_id": 1}).limit(self.config.sweep_limit)]
        if not ids:
            return 0
        lease = f"{self.name}:{uuid.uuid4().hex}"
        await self.db[DELIVERIES].update_many(
            {"_id": {"$in": ids}, **query},
            {"$set": {"state": CLAIMED, "by": self.name, "lease": lease, "due": now + self.config.stale_after},
             "$inc": {"version": 1}})
        records = [r async for r in self.db[DELIVERIES].find({"_id": {"$in": ids}, "lease": lease})]
        if not records:
            return 0
        claimed_at = time.monotonic()
        sub_ids = sorted({str(r["subscription_id"]) for r in records})
        subs = await self._subscriptions(sub_ids)
        tally: Counter[str] = Counter()
        jobs = [_Job(r, subs.get(str(r["subscription_id"])), claimed_at, tally) for r in records]
        await self._send_jobs(jobs)
        log.info("push sweep: %d messages", len(jobs), extra={"job": "push_sweep", "batch_size": len(jobs),
                                                              "outcomes": dict(tally), "consumer": self.name})
        return len(jobs)


async def consume(db: AsyncDatabase[Doc], redis: Redis, sender: PushSender, consumer_name: str,
                  stop: asyncio.Event, config: FanoutConfig = DEFAULT_CONFIG) -> None:
    """The worker's push task: run one consumer until `stop` is set."""
    await Consumer(db, redis, sender, name=consumer_name, config=config).run(stop)


async def delivery_counts(db: AsyncDatabase[Doc], campaign_id: str) -> dict[str, int]:
    """Records per state, counted from the records themselves (the authoritative, slower twin of `stats`)."""
    counts: dict[str, int] = {}
    async for doc in db[DELIVERIES].find({"campaign_id": campaign_id}, {"state": 1}):
        state = str(doc.get("state"))
        counts[state] = counts.get(state, 0) + 1
    return counts
