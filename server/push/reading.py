"""Reading the fan-out's Redis Stream: new batches, and those a dead consumer left unacknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.push.expand import FanoutConfig, ensure_group
from server.services.availability import outage

log = logging.getLogger("shangquan.push.fanout")
Entry = tuple[str, dict[str, str]]


class StreamReader:
    def __init__(self, redis: Redis, config: FanoutConfig, name: str) -> None:
        self.redis = redis
        self.config = config
        self.name = name

    async def read(self, count: int, *, block_ms: int | None) -> list[Entry]:
        """Reclaim entries idle longer than `reclaim_idle_ms`, else read new ones."""
        config = self.config
        claimed: Any = await self.redis.xautoclaim(config.stream, config.group, self.name, config.reclaim_idle_ms,
                                                   "0-0", count=count)
        entries: list[Any] = [e for e in claimed[1] if e] if claimed else []
        if not entries:
            read: Any = await self.redis.xreadgroup(config.group, self.name, {config.stream: ">"},
                                                    count=count, block=block_ms)
            entries = [entry for _, stream_entries in read or [] for entry in stream_entries]
        return [(str(entry_id), dict(fields or {})) for entry_id, fields in entries]

    async def done(self, entry_id: str) -> None:
        """Acknowledge a finished batch and delete it: the delivery records hold what happened, and a stream
        whose handled entries stayed would grow by a few MB per large campaign forever."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.config.stream, self.config.group, entry_id)
        pipe.xdel(self.config.stream, entry_id)
        await pipe.execute()

    async def loop(self, stop: asyncio.Event, handle: Callable[[str, dict[str, str]], Awaitable[None]]) -> None:
        """Keeps up to `read_count` batches in hand; on stop, takes no new ones and finishes those."""
        active: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                free = self.config.read_count - len(active)
                if free <= 0:
                    await asyncio.wait(active, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    entries = await self.read(free, block_ms=50 if active else self.config.block_ms)
                except RedisError as exc:
                    outage("redis").down(exc)  # told once per outage, not once a second
                    await asyncio.sleep(1)
                    with contextlib.suppress(RedisError):
                        await ensure_group(self.redis, self.config)
                    continue
                for entry_id, fields in entries:
                    task = asyncio.create_task(self._guarded(handle, entry_id, fields))
                    active.add(task)
                    task.add_done_callback(active.discard)
                if not entries and active:
                    await asyncio.wait(active, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if active:
                await asyncio.gather(*active, return_exceptions=True)

    async def _guarded(self, handle: Callable[[str, dict[str, str]], Awaitable[None]], entry_id: str,
                       fields: dict[str, str]) -> None:
        try:
            await handle(entry_id, fields)
        except Exception:  # the entry stays pending and is reclaimed later
            log.exception("push consumer %s failed on batch %s", self.name, entry_id)
