"""A lean HTTP/1.1 GET client for bench/load.py's shoppers: keep-alive connections and requests as bytes.

httpx costs ~0.5-1 ms of CPU per request, so on a 2-core machine a load generator built on it saturated
before the server did (issue 13: the generator, not the web process, set the "saturation" it printed).
This client writes a request prepared as bytes on a kept-alive connection and reads the answer with an
asyncio Protocol on uvloop: tens of microseconds per request. It speaks just what our app answers: a
status line, headers and a Content-Length body (a chunked or length-less answer is an error here, and
says so). Nothing of the app's code is used to build or check the requests.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

KEEPALIVE_S = 4.0  # a connection idle longer is closed, not reused: uvicorn closes them after 5 s


class HttpFailure(Exception):
    """A connection that failed, closed under a request, or an answer this client cannot read."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]  # lower-case names; the last value of a repeated header
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.idle_since = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but has its methods

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpFailure(f"connection closed under the request ({exc or 'by the peer'})"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self.waiter.set_exception(HttpFailure(f"bad status line {lines[0][:80]!r}"))
            return
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get(b"content-length")
        if length is None:
            if status in (204, 304):
                length = b"0"
            else:
                self.waiter.set_exception(HttpFailure(f"HTTP {status} without Content-Length (chunked?)"))
                return
        size = int(length)
        if len(self.buffer) < end + 4 + size:
            return
        body = bytes(self.buffer[end + 4:end + 4 + size])
        del self.buffer[:end + 4 + size]
        if headers.get(b"connection", b"").lower() == b"close" and self.transport is not None:
            self.transport.close()
            self.closed = True
        self.waiter.set_result(Answer(status, headers, body))


class LeanClient:
    """GETs to one host over a pool of kept-alive connections (at most one request in flight on each)."""

    def __init__(self, base_url: str, timeout: float = 30.0, max_connections: int = 256) -> None:
        host_port = base_url.removeprefix("http://").rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.host_header = host_port.encode()
        self.timeout = timeout
        self.idle: list[_Connection] = []
        self.opened = 0  # connections made so far (reuse shows as few)
        # As a load balancer's pool: requests beyond it wait here in turn (the open loop counts the wait as
        # latency), instead of opening thousands of sockets on an overloaded server. Not an asyncio.Semaphore:
        # each of its waiters removes itself from a list when cancelled, so ending a run with a backlog of 100,000
        # waiting requests took minutes of CPU (quadratic); `close` fails them all in one pass instead.
        self.free = max_connections
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.closing = False

    def request_bytes(self, target: str, headers: dict[str, str] | None = None) -> tuple[bytes, bytes]:
        """(head before the per-request headers, tail): callers add per-request header lines in between."""
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host_header.decode()}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n").encode(), b"\r\n"

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise HttpFailure(f"connect: {exc}") from exc
        self.opened += 1
        return conn

    async def send(self, raw: bytes) -> Answer:
        """Send one prepared request (bytes ending with the blank line) and read its answer."""
        await self._take_slot()
        try:
            return await self._send(raw)
        finally:
            self._give_slot()

    async def _take_slot(self) -> None:
        if self.closing:
            raise HttpFailure("client closed before the request was sent")
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._give_slot()  # handed the slot just as it was cancelled: pass it on
            raise  # a cancelled waiter stays in the deque; _give_slot skips it

    def _give_slot(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1

    async def _send(self, raw: bytes) -> Answer:
        conn = await self._connection()
        assert conn.transport is not None
        conn.waiter = asyncio.get_running_loop().create_future()
        conn.transport.write(raw)
        try:
            async with asyncio.timeout(self.timeout):
                answer = await conn.waiter
        except BaseException:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.close()
            raise
        finally:
            conn.waiter = None
        if not conn.closed:
            conn.idle_since = time.monotonic()
            self.idle.append(conn)
        return answer

    async def get(self, target: str) -> Answer:
        head, tail = self.request_bytes(target)
        return await self.send(head + tail)

    def close(self) -> None:
        """Close the idle connections, and fail every request still waiting for one (one pass)."""
        self.closing = True
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_exception(HttpFailure("client closed before the request was sent"))
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()
