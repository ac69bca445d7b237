"""Delivering claimed messages: the checks at send time (cancelled, expired, quiet hours, daily cap), the POST
in one of `in_flight` slots, and the outcome written in groups (server/push/batched_writes.py).

A POST holds its slot from before it is sent until its outcome is durably written: that is the duplicate
bound after a worker is killed (see server/push/fanout.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from redis.asyncio import Redis

from server.domain.push import policy, progress
from server.domain.push.campaign import CANCELLED
from server.domain.push.delivery_repository import DEFERRED, RETRY, Deliveries
from server.observability.metrics import count_push
from server.push.batched_writes import GroupWriter
from server.push.campaign_cache import CampaignCache
from server.push.encode import EncodedMessage, EncodeError, Subscription, encode
from server.push.expand import FanoutConfig
from server.push.sender import Outcome, SendResult

Send = Callable[[EncodedMessage], Awaitable[SendResult]]
# A batch's daily-cap places in one command: a pipeline of INCR + EXPIRE per message was 200 commands for
# redis-py to pack and parse per batch, ~8 % of a worker's CPU (bench/push_fanout.py --profile).
RESERVE_CAP: Final = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1])
end
return counts
"""


@dataclass(slots=True)
class Job:
    """A claimed record about to be sent; `leased_at` (monotonic) tells when its claim was last written."""
    record: dict[str, Any]
    sub: dict[str, Any] | None
    leased_at: float
    tally: Counter[str]
    cap_key: str | None = None  # the daily-cap counter this attempt reserved a place in


@dataclass(slots=True)
class Result:
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
    uncount: str | None = None  # a daily-cap place reserved for a message that was not delivered: given back


class HostNames:
    """A subscription's push-service host name, for metrics (a fan-out sees a handful)."""

    def __init__(self) -> None:
        self._hosts: dict[str, str] = {}

    def of(self, sub: dict[str, Any] | None) -> str:
        origin = str(sub.get("origin") or "") if sub else ""
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = (urlsplit(origin).hostname or "unknown") if origin else "unknown"
        return host


class Delivering:
    def __init__(self, deliveries: Deliveries, redis: Redis, send: Send, campaigns: CampaignCache, *,
                 name: str, config: FanoutConfig, clock: Callable[[], float], hosts: HostNames) -> None:
        self.deliveries = deliveries
        self.redis = redis
        self._send = send
        self.campaigns = campaigns
        self.name = name
        self.config = config
        self.clock = clock
        self.hosts = hosts
        self._slots = asyncio.Semaphore(config.in_flight)
        self._writer = GroupWriter[Result](self.store, config.write_group, config.write_linger)
        self._reserve = redis.register_script(RESERVE_CAP)

    async def drain(self) -> None:
        await self._writer.drain()

    async def send_jobs(self, jobs: Sequence[Job]) -> None:
        """Settle what needs no POST, count the daily cap, then send the rest `in_flight` at a time."""
        if not jobs:
            return
        now = self.clock()
        ready: list[Job] = []
        settled: list[Result] = []
        for job in jobs:
            result = await self._precheck(job, now)
            if result is None:
                ready.append(job)
            else:
                settled.append(result)
        if self.config.daily_cap > 0:
            ready = await self._apply_cap(ready, now, settled)
        if settled:
            await self.store(settled)
        async with asyncio.TaskGroup() as group:
            for job in ready:
                group.create_task(self._attempt(job))

    async def _precheck(self, job: Job, now: float) -> Result | None:
        record = job.record
        campaign = await self.campaigns.get(str(record["campaign_id"]))
        if campaign is None or campaign.status == CANCELLED:
            return self.final(job, "cancelled")
        if job.sub is None:
            return self.final(job, "skipped")
        if int(campaign.expires_ts - now) <= 0:
            return self.final(job, "timed_out")
        until = policy.defer_until(self.config.quiet_hours, campaign.urgency, now)
        if until is not None:  # counted once per message, however often it is held back
            counters = {} if record.get("deferred") else {"deferred": 1}
            return Result(record, DEFERRED, DEFERRED, self.hosts.of(job.sub), job.tally, counters,
                          {"due": until, "deferred": 1})
        return None

    async def _apply_cap(self, jobs: list[Job], now: float, settled: list[Result]) -> list[Job]:
        """Reserve a place under the daily cap (INCR + EXPIRE per subscription and local day, one script call
        per batch); over the cap is final ("capped").  The place is kept only if the message is delivered: the
        outcome write gives it back otherwise (see `store`), so the cap counts messages actually sent."""
        if not jobs:
            return jobs
        keys: list[str | bytes | memoryview] = []
        for job in jobs:
            job.cap_key = policy.cap_key(str(job.record["subscription_id"]), now)
            keys.append(job.cap_key)
        replies: list[Any] = await self._reserve(keys=keys, args=[policy.CAP_KEY_SECONDS])
        over: set[int] = set()
        for job, count in zip(jobs, replies, strict=True):
            if int(count) > self.config.daily_cap:
                over.add(id(job))
                settled.append(self.final(job, "capped"))
        return [job for job in jobs if id(job) not in over]

    def final(self, job: Job, state: str) -> Result:
        result = Result(job.record, state, state, self.hosts.of(job.sub), job.tally, {state: 1})
        if job.cap_key is not None:
            if state == "delivered":
                result.fields["counted"] = 1
            else:
                result.uncount = job.cap_key
        return result

    async def _attempt(self, job: Job) -> None:
        async with self._slots:
            result = await self._attempt_in_slot(job)
            if result is not None:
                await self._writer.put(result)  # the slot is held until the outcome is durable
            elif job.cap_key is not None:  # another worker took the message over: its place is not ours
                await self.redis.decr(job.cap_key)

    async def _attempt_in_slot(self, job: Job) -> Result | None:
        record = job.record
        campaign = await self.campaigns.get(str(record["campaign_id"]))
        if campaign is None or campaign.status == CANCELLED:
            return self.final(job, "cancelled")
        ttl = int(campaign.expires_ts - self.clock())
        if ttl <= 0:
            return self.final(job, "timed_out")
        if time.monotonic() - job.leased_at > self.config.stale_after / 4 and not await self._renew(job):
            job.tally["lost_claim"] += 1
            return None  # taken over by another worker's sweeper: it sends
        assert job.sub is not None
        sub = job.sub
        try:
            target = Subscription(str(sub["endpoint"]), str(sub["keys"]["p256dh"]), str(sub["keys"]["auth"]))
            message = encode(target, self.campaigns.payload(campaign, str(sub.get("locale") or "")), ttl=ttl,
                             urgency=campaign.urgency, topic=campaign.collapse_topic)
        except (EncodeError, KeyError, TypeError):
            return self.final(job, "failed")
        sent = await self._send(message)
        return self._outcome(job, sent, str(sub["_id"]))

    async def _renew(self, job: Job) -> bool:
        """Push a claim's staleness out before a late POST."""
        record = job.record
        if not await self.deliveries.renew(str(record["_id"]), int(record["version"]),
                                           self.clock() + self.config.stale_after):
            return False
        record["version"] = int(record["version"]) + 1
        job.leased_at = time.monotonic()
        return True

    def _outcome(self, job: Job, sent: SendResult, sub_id: str) -> Result:
        outcome = sent.outcome
        if outcome is Outcome.DELIVERED:
            result = self.final(job, "delivered")
        elif outcome is Outcome.EXPIRED:
            result = self.final(job, "expired")
            result.delete_subscription = sub_id
        elif outcome is Outcome.RATE_LIMITED:
            wait = sent.retry_after if sent.retry_after is not None else 60.0
            result = self._retry(job, wait, "rate_limited")
        elif outcome is Outcome.RETRYABLE:
            failures = int(job.record.get("failures") or 0) + 1
            if failures >= self.config.max_failures:
                result = self.final(job, "failed")
            else:
                result = self._retry(job, self.config.backoff * 2 ** (failures - 1), "retried")
            result.failed = True
        elif outcome is Outcome.TOO_LARGE:
            result = self.final(job, "too_large")
        elif outcome is Outcome.BLOCKED:
            result = self.final(job, "blocked")
        else:
            result = self.final(job, "failed")
        if sent.posted:
            result.posted = True
            if not job.record.get("posted"):
                result.counters["sent"] = 1
                result.fields["posted"] = 1
        return result

    def _retry(self, job: Job, wait: float, counter: str) -> Result:
        return Result(job.record, RETRY, counter, self.hosts.of(job.sub), job.tally, {counter: 1},
                      {"due": self.clock() + max(0.0, wait)}, uncount=job.cap_key)

    # ---- writing outcomes

    async def store(self, results: list[Result]) -> None:
        """One bulk write of compare-and-sets on `version`; counters move only for the writes that won."""
        token = uuid.uuid4().hex
        now = self.clock()
        # records that get the same change from the same version are written together
        groups: dict[tuple[object, ...], tuple[list[str], int, dict[str, Any]]] = {}
        for r in results:
            version = int(r.record["version"])
            key = (version, r.state, r.posted, r.failed, *sorted(r.fields.items()))
            group = groups.get(key)
            if group is None:
                change: dict[str, Any] = {
                    "$set": {"state": r.state, "by": self.name, "write": token, "at": now, **r.fields},
                    "$inc": {"version": 1, "tries": 1 if r.posted else 0, "failures": 1 if r.failed else 0}}
                group = groups[key] = ([], version, change)
            group[0].append(str(r.record["_id"]))
        ours = await self.deliveries.write_outcomes(list(groups.values()), token)
        won = [r for r in results if str(r.record["_id"]) in ours]
        for r in won:
            r.record["version"] = int(r.record["version"]) + 1
        by_campaign = await self._count(won)
        await self._redis_outcomes(results, by_campaign)
        await self.deliveries.forget_subscriptions([r.delete_subscription for r in won if r.delete_subscription])

    async def _redis_outcomes(self, results: Sequence[Result], by_campaign: dict[str, Counter[str]]) -> None:
        """The Redis side of a group's outcomes, in one pipeline: daily-cap places given back for messages
        not delivered (all of this attempt's, whoever won the record's write); and, for live campaignProgress,
        the announcement of each campaign whose counters just moved (`by_campaign`; coalesced by the web hubs)."""
        uncounts = [r.uncount for r in results if r.uncount]
        moved = [campaign_id for campaign_id, counters in by_campaign.items() if any(counters.values())]
        if not uncounts and not moved:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key in uncounts:
            pipe.decr(key)
        for campaign_id in moved:
            pipe.publish(progress.CHANNEL, campaign_id)
        await pipe.execute()

    async def _count(self, results: Iterable[Result]) -> dict[str, Counter[str]]:
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
            await self.deliveries.add_to_counters(campaign_id, counters)
        return by_campaign
