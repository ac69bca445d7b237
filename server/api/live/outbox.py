"""What one socket still has to be sent: bounded, written in order by one task, never holding others back.

Fan-out only appends to an outbox (no await), so a socket whose client stopped reading delays nobody else.
A state frame (a crowd level, a campaign's counts) replaces the same subscription's frame still waiting,
so a slow client (one whose write has been stuck over STUCK seconds, or whose queue is full) skips to the
newest state; an event frame (an inbox item) cannot be skipped, so a client
that lets `limit` frames pile up, or whose writes stay stuck `slow_seconds`, is closed with SLOW_CLIENT and
refetches on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from server.observability import metrics

SLOW_CLIENT: Final = 4008  # our close code: this socket fell behind its live updates
SLOW_REASON: Final = "Too slow: fell behind live updates; reconnect for the current state"
STUCK: Final = 1.0  # seconds a write may take before the socket counts as behind

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]
_closing: set[asyncio.Task[None]] = set()  # close handshakes in progress (a task needs a strong reference)


class Outbox:
    __slots__ = ("close_socket", "closed", "frames", "limit", "send", "sending_since", "slow_seconds", "wake",
                 "writer")

    def __init__(self, send: Send, close: Close, *, limit: int, slow_seconds: float) -> None:
        self.send, self.close_socket = send, close
        self.limit, self.slow_seconds = limit, slow_seconds
        self.frames: deque[tuple[str | None, str]] = deque()  # (the subscription a state frame stands for, text)
        self.wake: asyncio.Event | None = None
        self.writer: asyncio.Task[None] | None = None
        self.sending_since = 0.0
        self.closed = False

    def push(self, text: str, supersedes: str | None = None) -> None:
        """Queue a frame; `supersedes` (a subscription id) marks a state frame that replaces its waiting one."""
        if self.closed:
            return
        if self.sending_since and time.monotonic() - self.sending_since > self.slow_seconds:
            self.give_up()
            return
        frames = self.frames
        # Skip superseded state only for a socket that is behind (a write stuck for a while, or a full queue):
        # when the whole process is late, a frame merely waiting for its writer's turn is still delivered.
        behind = len(frames) >= self.limit or (self.sending_since and time.monotonic() - self.sending_since > STUCK)
        if supersedes is not None and frames and behind:
            for index, (kind, _) in enumerate(frames):
                if kind == supersedes:
                    frames[index] = (supersedes, text)
                    metrics.live_superseded()
                    return
        if len(frames) >= self.limit:
            self.give_up()
            return
        frames.append((supersedes, text))
        if self.writer is None:
            self.wake = asyncio.Event()
            self.writer = asyncio.create_task(self._write())
        elif len(frames) == 1 and self.wake is not None:
            self.wake.set()

    async def _write(self) -> None:
        frames, wake = self.frames, self.wake
        assert wake is not None
        try:
            while not self.closed:
                while frames:
                    _, text = frames.popleft()
                    self.sending_since = time.monotonic()
                    await self.send(text)
                    self.sending_since = 0.0
                wake.clear()
                await wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket is gone; its reader notices and unsubscribes it
            self.closed = True
            frames.clear()

    def give_up(self, code: int = SLOW_CLIENT, reason: str = SLOW_REASON) -> None:
        """Drop what is waiting and close the socket (the close frame queues behind what the kernel holds)."""
        if self.closed:
            return
        self.closed = True
        self.frames.clear()
        if self.writer is not None:
            self.writer.cancel()
        if code == SLOW_CLIENT:
            metrics.live_slow_close()
        task = asyncio.create_task(self._close(code, reason))
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.close_socket(code, reason)

    async def stop(self) -> None:
        """The socket closed: end the writer."""
        self.closed = True
        self.frames.clear()
        if self.writer is not None:
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.writer
