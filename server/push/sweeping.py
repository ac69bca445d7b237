"""The sweeper: takes over records in "retry" or "deferred" whose time has come and "sending" claims older
than `stale_after` (their worker died), with one `update_many` stamped with a lease token."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable

from server.domain.push.delivery_repository import Deliveries
from server.push.delivering import Delivering, Job
from server.push.expand import FanoutConfig

log = logging.getLogger("shangquan.push.fanout")


class Sweeper:
    def __init__(self, deliveries: Deliveries, delivering: Delivering, *, name: str, config: FanoutConfig,
                 clock: Callable[[], float]) -> None:
        self.deliveries = deliveries
        self.delivering = delivering
        self.name = name
        self.config = config
        self.clock = clock

    async def sweep(self) -> int:
        """Take over due retries, deferred messages and stale claims; returns how many were attempted."""
        now = self.clock()
        ids = await self.deliveries.due_ids(now, self.config.sweep_limit)
        if not ids:
            return 0
        records = await self.deliveries.lease(ids, now, by=self.name, lease=f"{self.name}:{uuid.uuid4().hex}",
                                              stale_after=self.config.stale_after)
        if not records:
            return 0
        claimed_at = time.monotonic()
        subs = await self.deliveries.subscriptions(sorted({str(r["subscription_id"]) for r in records}))
        tally: Counter[str] = Counter()
        jobs = [Job(r, subs.get(str(r["subscription_id"])), claimed_at, tally) for r in records]
        await self.delivering.send_jobs(jobs)
        log.info("push sweep: %d messages", len(jobs), extra={"job": "push_sweep", "batch_size": len(jobs),
                                                              "outcomes": dict(tally), "consumer": self.name})
        return len(jobs)
