"""A Redis pub/sub subscription that outlives Redis restarts: one per hub and web process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from server.services.availability import outage

RETRY_SECONDS = 1.0
T = TypeVar("T")


def put_newest(queue: asyncio.Queue[T], item: T) -> None:
    """Queue `item` for a live subscriber, dropping its oldest waiting item when the queue is full: a slow
    client skips ahead to newer state instead of holding the hub or growing without bound."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)


async def follow(redis: Redis, name: str, subscribe: Callable[[PubSub], Awaitable[Any]],
                 handle: Callable[[dict[str, Any]], Awaitable[None]], ready: asyncio.Event,
                 log: logging.Logger) -> None:
    """Subscribe, hand every message to `handle`, and resubscribe after Redis errors, until cancelled.

    Subscribers of the hub keep their WebSockets through an outage (their answers come from MongoDB);
    the outage is logged by the process's shared Outage (once when it starts, once when it ends), and the
    hub's own lines are at INFO.
    """
    lost_at: float | None = None
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await subscribe(pubsub)
                ready.set()
                outage("redis").up()
                if lost_at is not None:
                    log.info("%s subscribed to Redis again after %.1f s; live updates resume", name,
                             time.monotonic() - lost_at)
                    lost_at = None
                async for message in pubsub.listen():
                    await handle(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage("redis").down(exc)
            if lost_at is None:
                lost_at = time.monotonic()
                log.info("%s lost Redis (%s); live updates pause until it is back", name, type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)


class Hub:
    """One pub/sub subscription per process, started with the app and stopped with it; a subclass says what it
    listens to (`listen_to`) and what a message does (`handle`)."""

    name = "hub"
    START_WAIT = 2.0

    def __init__(self, redis: Redis, log: logging.Logger) -> None:
        self.redis = redis
        self.log = log
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def listen_to(self, pubsub: PubSub) -> None:
        raise NotImplementedError

    async def handle(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self.task = asyncio.create_task(follow(self.redis, self.name, self.listen_to, self.handle, self.ready,
                                               self.log))
        # Normally subscribed in milliseconds; with Redis down the app starts anyway (reads work without it)
        # and the hub subscribes once Redis is back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout=self.START_WAIT)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
