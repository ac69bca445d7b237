"""Outcomes written in groups: one bulk write per `size` results (or per `linger` seconds), each sender
waiting until its own result is durably stored (it holds its in-flight slot until then)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class GroupWriter(Generic[T]):
    """Collects outcomes and writes them `size` at a time (or after `linger`); `put` returns once written."""

    def __init__(self, store: Callable[[list[T]], Any], size: int, linger: float) -> None:
        self._store = store
        self._size = max(1, size)
        self._linger = linger
        self._items: list[tuple[T, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def put(self, result: T) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._items.append((result, done))
        if len(self._items) >= self._size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._linger, self._flush)
        await done  # if this sender is cancelled, its outcome is still written with the group

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._items = self._items, []
        if items:
            task = asyncio.get_running_loop().create_task(self._write(items))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _write(self, items: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            await self._store([result for result, _ in items])
        except Exception as exc:
            for _, done in items:
                if not done.done():
                    done.set_exception(exc)
        else:
            for _, done in items:
                if not done.done():
                    done.set_result(None)

    async def drain(self) -> None:
        self._flush()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
