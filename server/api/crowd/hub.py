"""One Redis subscription per web process, fanned out to its GraphQL subscribers by district."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from server.domain.crowd.live import CHANNEL_PREFIX
from server.services.pubsub import Hub, put_newest

log = logging.getLogger("shangquan.crowd")
QUEUE_SIZE = 16


class CrowdHub(Hub):
    name = "crowd hub"

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, log)
        self.subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    async def listen_to(self, pubsub: PubSub) -> None:
        await pubsub.psubscribe(CHANNEL_PREFIX + "*")

    async def handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == "pmessage":
            self._dispatch(message["data"])

    def _dispatch(self, raw: str | bytes) -> None:
        # one parsed message shared by every subscriber of the district (they may cache on it)
        message = json.loads(raw)
        for queue in list(self.subscribers.get(message["districtId"], ())):
            put_newest(queue, message)  # a slow client skips to the newest level rather than piling up

    def subscribe(self, district_id: str) -> Subscription:
        """Registered at once, so an update published while the caller reads the current level is kept."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers[district_id].add(queue)
        return Subscription(self, district_id, queue)


class Subscription:
    def __init__(self, hub: CrowdHub, district_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.hub, self.district_id, self.queue = hub, district_id, queue

    async def next(self) -> dict[str, Any]:
        """The newest update waiting: each is the district's whole state, so those before it are superseded
        (a feed that was busy or resting takes one frame for a burst, not one per message)."""
        queue = self.queue
        message = await queue.get()
        while not queue.empty():
            message = queue.get_nowait()
        return message

    def close(self) -> None:
        self.hub.subscribers[self.district_id].discard(self.queue)
