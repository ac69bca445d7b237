"""One Redis subscription per web process, fanned out to its GraphQL subscribers by district."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

from redis.asyncio import Redis

from server.domain.crowd.live import CHANNEL_PREFIX
from server.services.pubsub import follow

START_WAIT = 2.0
log = logging.getLogger("shangquan.crowd")
QUEUE_SIZE = 16


class CrowdHub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        # Normally subscribed in milliseconds; with Redis down the app starts anyway (reads work without it)
        # and the hub subscribes once Redis is back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout=START_WAIT)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        await follow(self.redis, "crowd hub", lambda pubsub: pubsub.psubscribe(CHANNEL_PREFIX + "*"),
                     self._message, self.ready, log)

    async def _message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "pmessage":
            self._dispatch(message["data"])

    def _dispatch(self, raw: str | bytes) -> None:
        # one parsed message shared by every subscriber of the district (they may cache on it)
        message = json.loads(raw)
        for queue in list(self.subscribers.get(message["districtId"], ())):
            if queue.full():  # a slow client skips to the newest level rather than piling up
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    def subscribe(self, district_id: str) -> Subscription:
        """Registered at once, so an update published while the caller reads the current level is kept."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers[district_id].add(queue)
        return Subscription(self, district_id, queue)


class Subscription:
    def __init__(self, hub: CrowdHub, district_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.hub, self.district_id, self.queue = hub, district_id, queue

    async def next(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.hub.subscribers[self.district_id].discard(self.queue)
