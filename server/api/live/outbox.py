"""What one socket still has to be sent: bounded, written in order, never holding others back.

Fan-out writes a frame's ready-made bytes to the outbox's `transport` itself when it is set (see feeds.py), else
calls `push` (no await), so a socket whose client stopped reading delays nobody else. A frame is written at once
when nothing waits before it (the server's direct write; else the ASGI send stepped in place) and, as long as the
transport takes the bytes, finishes without ever suspending
(no task, no wake-up per frame and subscriber). Only when the transport holds a write back (its buffer is full:
the client reads slowly) does the socket get a queue and a writer task, until it has caught up; an idle socket
holds neither.

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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

from server.api.live.protocol import text_frame_head
from server.observability import metrics

SLOW_CLIENT: Final = 4008  # our close code: this socket fell behind its live updates
SLOW_REASON: Final = "Too slow: fell behind live updates; reconnect for the current state"
STUCK: Final = 1.0  # seconds a write may take before the socket counts as behind

Send = Callable[[str], Coroutine[Any, Any, None]]
Close = Callable[[int, str], Awaitable[None]]
_closing: set[asyncio.Task[None]] = set()  # close handshakes in progress (a task needs a strong reference)


class Transport(Protocol):
    def write(self, data: bytes) -> object: ...


class DirectWriter(Protocol):
    """The server's socket (LiveWebSocketProtocol): `direct` writes a whole frame now (its transport's write), or is
    None while it may not; it calls its `sink`'s refresh() whenever `direct` changes."""

    direct: Callable[[bytes], object] | None
    sink: Outbox | None

    @property
    def transport(self) -> Transport: ...


async def _finish(held: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Go on with a coroutine stepped by hand that suspended, yielding `waiting`: what a Task would do."""
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield: let the loop run once
            else:  # the future it waits for (the transport writable again), marked as a Task would unmark it
                waiting._asyncio_future_blocking = False
                await waiting
            try:
                waiting = held.send(None)
            except StopIteration:
                return
    finally:
        held.close()  # a no-op once it has finished; cancelled: closed where it waited


class Outbox:
    __slots__ = ("close_socket", "closed", "frames", "idle", "limit", "send", "sending_since", "server",
                 "slow_seconds", "transport", "writer")

    def __init__(self, send: Send, close: Close, *, limit: int, slow_seconds: float,
                 server: DirectWriter | None = None) -> None:
        """`server`, when the web server is ours, takes whole frames at once without a coroutine (its `direct`)."""
        self.send, self.close_socket, self.server = send, close, server
        self.limit, self.slow_seconds = limit, slow_seconds
        # While a write is held back: the frames behind it, (the subscription a state frame stands for, text),
        # and the task writing them. Both None otherwise.
        self.frames: deque[tuple[str | None, str]] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.sending_since = 0.0  # when the held write started
        self.closed = False
        # Nothing waits and the socket is not closed: a frame may go to `server.direct` before anything else.
        self.idle = server is not None
        # The server's transport while idle and the server's `direct` is set, else None: the one attribute the
        # fan-out reads per subscriber (then calls its `write`), kept by whatever changes `idle` here and, through
        # `server.sink`, by the server whenever its `direct` changes. On the outbox's few slots it stays in the
        # CPU's cache better than on the protocol's dict of ~40 attributes, and the transport is what the write
        # touches anyway (a bound `write` would be one more object).
        self.transport: Transport | None = None
        if server is not None:
            server.sink = self
            self.refresh()

    def refresh(self) -> None:
        """Decide `transport` again (the server's `direct` changed, or `idle` did)."""
        server = self.server
        ready = self.idle and server is not None and server.direct is not None
        self.transport = server.transport if ready and server is not None else None

    def push(self, text: str, supersedes: str | None = None) -> None:
        """Queue a frame; `supersedes` (a subscription id) marks a state frame that replaces its waiting one."""
        if self.closed:
            return
        frames = self.frames
        if frames is None:
            self._write_now(text)
            return
        if time.monotonic() - self.sending_since > self.slow_seconds:
            self.give_up()
            return
        # Skip superseded state only for a socket that is behind (a write stuck for a while, or a full queue):
        # a frame merely waiting a moment behind a held write is still delivered.
        behind = len(frames) >= self.limit or time.monotonic() - self.sending_since > STUCK
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

    def _write_now(self, text: str) -> None:
        transport = self.transport
        if transport is not None:
            data = text.encode()
            transport.write(text_frame_head(len(data)) + data)
            return
        write = self.send(text)
        try:
            waiting = write.send(None)
        except StopIteration:
            return  # written: the usual case
        except Exception:  # the socket is gone; its reader notices and unsubscribes it
            self.closed, self.idle = True, False
            self.refresh()
            return
        self.sending_since = time.monotonic()
        self.frames, self.idle = deque(), False
        self.refresh()
        self.writer = asyncio.create_task(self._write_behind(write, waiting))

    async def _write_behind(self, held: Coroutine[Any, Any, None], waiting: Any) -> None:
        frames = self.frames
        assert frames is not None
        try:
            await _finish(held, waiting)
            while frames and not self.closed:
                _, text = frames.popleft()
                self.sending_since = time.monotonic()
                await self.send(text)
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket is gone; its reader notices and unsubscribes it
            self.closed = True
        # caught up (nothing awaited since the queue emptied): back to writing at once
        self.frames, self.writer, self.sending_since = None, None, 0.0
        self.idle = self.server is not None and not self.closed
        self.refresh()

    def give_up(self, code: int = SLOW_CLIENT, reason: str = SLOW_REASON) -> None:
        """Drop what is waiting and close the socket (the close frame queues behind what the kernel holds)."""
        if self.closed:
            return
        self.closed, self.idle = True, False
        self.refresh()
        if self.frames is not None:
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
        self.closed, self.idle = True, False
        self.refresh()
        if self.server is not None and self.server.sink is self:
            self.server.sink = None
        writer = self.writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
