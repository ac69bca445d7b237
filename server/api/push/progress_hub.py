"""One Redis subscription per web process to campaign changes, for the operators following campaigns live.

A change is announced by id (server/domain/push/progress.py); the hub re-reads the campaign once for all its
followers in this process, at most every INTERVAL seconds per campaign: a worker recording thousands of
outcomes a second still makes a few frames a second, the newest counts always last.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from server.domain.push import campaign_service, progress
from server.domain.push.campaign import Campaign
from server.services.mongo import Doc
from server.services.pubsub import Hub, put_newest

log = logging.getLogger("shangquan.push.progress")
INTERVAL: Final = 0.25
MAX_ID: Final = 64


class ProgressHub(Hub):
    name = "progress hub"

    def __init__(self, redis: Redis, db: AsyncDatabase[Doc], interval: float = INTERVAL) -> None:
        super().__init__(redis, log)
        self.db, self.interval = db, interval
        self.watchers: dict[str, set[ProgressWatch]] = defaultdict(set)
        self.last: dict[str, float] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}

    async def listen_to(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(progress.CHANNEL)

    async def handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == "message":
            raw = message["data"]
            self.changed(raw.decode() if isinstance(raw, bytes) else str(raw))

    def changed(self, campaign_id: str) -> None:
        if not campaign_id or len(campaign_id) > MAX_ID or campaign_id not in self.watchers:
            return  # nobody here follows it
        if campaign_id in self.pending:
            return  # the reload already scheduled will read this change too
        clock = asyncio.get_running_loop().time()
        wait = max(0.0, self.last.get(campaign_id, -self.interval) + self.interval - clock)
        self.pending[campaign_id] = asyncio.create_task(self._reload(campaign_id, wait))

    async def _reload(self, campaign_id: str, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
            self.last[campaign_id] = asyncio.get_running_loop().time()
            del self.pending[campaign_id]  # a change announced from now on needs another read
            campaign = await campaign_service.get(self.db, campaign_id)
        except PyMongoError as exc:
            log.warning("progress hub could not load campaign %s (%s)", campaign_id, exc)
            return
        finally:
            self.pending.pop(campaign_id, None)
        if campaign is not None:
            for watch in list(self.watchers.get(campaign_id, ())):
                watch.put(campaign)

    def watch(self, campaign_id: str) -> ProgressWatch:
        """Registered at once, so a change announced while the caller reads the campaign is kept."""
        watch = ProgressWatch(self, campaign_id)
        self.watchers[campaign_id].add(watch)
        return watch

    async def stop(self) -> None:
        for task in list(self.pending.values()):
            task.cancel()
        await super().stop()


class ProgressWatch:
    def __init__(self, hub: ProgressHub, campaign_id: str) -> None:
        self.hub, self.campaign_id = hub, campaign_id
        self.queue: asyncio.Queue[Campaign] = asyncio.Queue(1)

    def put(self, campaign: Campaign) -> None:
        put_newest(self.queue, campaign)  # only the newest state matters

    async def next(self) -> Campaign:
        return await self.queue.get()

    def close(self) -> None:
        watchers = self.hub.watchers.get(self.campaign_id)
        if watchers is not None:
            watchers.discard(self)
            if not watchers:
                del self.hub.watchers[self.campaign_id]
                self.hub.last.pop(self.campaign_id, None)
