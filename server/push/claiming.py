"""Claiming a batch: one delivery record per subscriber, inserted with `insert_many(ordered=False)`; a
duplicate key means another worker has that subscriber.  Records that need no POST are inserted in their
final state (cancelled, skipped, timed_out) or as "deferred" (quiet hours, due when they end)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis

from server.domain.push import policy, progress
from server.domain.push.campaign import CANCELLED, Campaign
from server.domain.push.delivery_repository import CLAIMED, DEFERRED, Deliveries, delivery_id
from server.observability.metrics import count_push
from server.push.delivering import HostNames
from server.push.expand import FanoutConfig


class Claiming:
    def __init__(self, deliveries: Deliveries, redis: Redis, *, name: str, config: FanoutConfig,
                 clock: Callable[[], float], hosts: HostNames) -> None:
        self.deliveries = deliveries
        self.redis = redis
        self.name = name
        self.config = config
        self.clock = clock
        self.hosts = hosts

    def new_record(self, campaign: Campaign, sub_id: str, sub: dict[str, Any] | None, now: float) -> dict[str, Any]:
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

    async def claim(self, campaign: Campaign, ids: Sequence[str], subs: dict[str, dict[str, Any]],
                    tally: Counter[str]) -> list[dict[str, Any]]:
        """Claim the batch; returns this worker's "sending" claims, having counted those settled at once."""
        now = self.clock()
        fresh = [self.new_record(campaign, sub_id, subs.get(sub_id), now) for sub_id in ids]
        mine = await self.deliveries.claim(fresh)
        if len(mine) < len(fresh):
            tally["claimed_elsewhere"] += len(fresh) - len(mine)
        settled = [r for r in mine if r["state"] != CLAIMED]
        if settled:
            await self._count_inserted(campaign.id, settled, subs, tally)
        return [r for r in mine if r["state"] == CLAIMED]

    async def _count_inserted(self, campaign_id: str, records: Sequence[dict[str, Any]],
                              subs: dict[str, dict[str, Any]], tally: Counter[str]) -> None:
        counters: Counter[str] = Counter()
        metrics: Counter[tuple[str, str]] = Counter()
        for record in records:
            state = str(record["state"])
            counters[state] += 1
            metrics[(state, self.hosts.of(subs.get(str(record["subscription_id"]))))] += 1
        tally.update(counters)
        for (label, host), n in metrics.items():
            count_push(label, host, n)
        await self.deliveries.add_to_counters(campaign_id, counters)
        await progress.changed(self.redis, campaign_id)  # live campaignProgress (coalesced by the web hubs)
