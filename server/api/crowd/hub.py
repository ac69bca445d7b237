"""One Redis subscription per web process, fanned out to its GraphQL subscribers by district."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from typing import Any

from redis.asyncio import Redis

from server.domain.crowd.live import CHANNEL_PREFIX

log = logging.getLogger("shangquan.crowd")
QUEUE_SIZE = 16
RETRY_SECONDS = 1.0


class CrowdHub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        lost_at: float | None = None
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                    self.ready.set()
                    if lost_at is not None:
                        log.info("crowd hub subscribed to Redis again after %.1f s; live updates resume",
                                 time.monotonic() - lost_at)
                        lost_at = None
                    async for message in pubsub.listen():
                        if message.get("type") == "pmessage":
                            self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis went away: subscribers keep their sockets (and answers from MongoDB); retry each
                # second, and say so once rather than every second of the outage.
                if lost_at is None:
                    lost_at = time.monotonic()
                    log.warning("crowd hub lost Redis (%s: %s); live updates pause until it is back",
                                type(exc).__name__, exc)
                await asyncio.sleep(RETRY_SECONDS)

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
