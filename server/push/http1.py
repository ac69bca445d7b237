"""HTTP/1.1 keep-alive to the push services that do not offer h2 (Mozilla's autopush, plain-http test services):
a pool of connections per service, one request at a time on each.

Why not aiohttp, which carried these before: every request of a fan-out is the same small POST, and aiohttp's
client machinery around it (request and response objects, header multidicts, its connector, a timer and a
few tasks per request) cost more CPU per message than the encryption (bench/push_fanout.py --py-spy).  This
speaks just what a push service answers: a status line, headers, and a body sized by Content-Length, sent
chunked, or ending at close; anything else fails the request and closes the connection.  Like the HTTP/2
side (server/push/http2.py, whose errors and Response it shares) it dials only what `Dial` returns, the
addresses the SSRF guard checked.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable

from server.push.http2 import MaybeProcessed, NotProcessed, Response

MAX_HEAD = 65_536  # bytes of status line and headers
MAX_KEPT = 4_096  # bytes of an answer's body kept (error text); the rest is read and dropped
# An idle keep-alive connection older than this is closed rather than reused: NATs and load balancers drop idle
# connections without telling either end, and a request written into one fails (aiohttp also used 15 s).
IDLE_SECONDS = 15.0

# Strict forms (RFC 9112): int() would also take "+5", "1_0" and " 5", and "HTTP/1.1 2000" must not read as 200.
# A status line without a reason phrase (and its space) is read, as browsers and curl read it.
_STATUS_LINE = re.compile(r"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?", re.ASCII)
_DECIMAL = re.compile(rb"[0-9]{1,18}", re.ASCII)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}", re.ASCII)


class StaleConnection(MaybeProcessed):
    """A reused keep-alive connection was lost before any byte of the answer: most likely the service (or a
    NAT) had already dropped it when the request was written.  The pool sends the request once more, on a new
    connection."""


class Http1Connection(asyncio.Protocol):
    """One connection; `send` writes a whole request and returns the future of its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False  # the last answer was read whole and the service keeps the connection open
        self.answers = 0  # answers read whole on this connection: above 0, it is a reused one
        self.idle_since = 0.0  # time.monotonic() when it was last put back in the pool
        self._heard = False  # a byte of the current answer has come
        self._buffer = bytearray()
        self._done: asyncio.Future[Response] | None = None
        self._mode = ""  # "" (reading a head), "length", "chunk-size", "chunk", "chunk-end", "trailers", "close"
        self._left = 0
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._keep_alive = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        done = self._done
        if done is not None and not done.done():
            if self._mode == "close" and exc is None:  # a body that ends when the connection does, cleanly
                done.set_result(Response(self._status, self._headers, bytes(self._body)))
            else:
                lost = StaleConnection if self.answers and not self._heard else MaybeProcessed
                done.set_exception(lost(f"connection lost: {exc or 'closed by the push service'}"))

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        done = self._done = asyncio.get_running_loop().create_future()
        self.reusable = False
        self._heard = False
        self._mode, self._body, self._headers = "", bytearray(), {}
        self.transport.write(request)
        return done

    def data_received(self, data: bytes) -> None:
        done = self._done
        if done is None or done.done():  # nothing asked: a service that talks out of turn is not reused
            self.close()
            return
        self._heard = True
        self._buffer += data
        try:
            self._parse(done)
        except ValueError as exc:
            done.set_exception(MaybeProcessed(f"invalid HTTP/1.1 answer: {exc}"))
            self.close()

    def _parse(self, done: asyncio.Future[Response]) -> None:
        buffer = self._buffer
        while True:
            mode = self._mode
            if mode == "":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise ValueError("status line and headers too long")
                    return
                self._head(bytes(buffer[:end]).decode("latin-1"))
                del buffer[:end + 4]
            elif mode == "length":
                if not self._take(buffer):
                    return
                self._finish(done)
                return
            elif mode in ("chunk-size", "trailers"):
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise ValueError("chunk line too long")
                    return
                line = bytes(buffer[:end])
                del buffer[:end + 2]
                if mode == "trailers":
                    if not line:
                        self._finish(done)
                        return
                else:
                    digits = line.split(b";", 1)[0].rstrip(b" \t")  # an extension may follow ";" (RFC 9112 7.1.1)
                    if not _HEX.fullmatch(digits):
                        raise ValueError(f"not a chunk size: {line[:60]!r}")
                    size = int(digits, 16)
                    self._mode, self._left = ("trailers", 0) if size == 0 else ("chunk", size)
            elif mode == "chunk":
                if not self._take(buffer):
                    return
                self._mode = "chunk-end"
            elif mode == "chunk-end":  # the CRLF that closes each chunk's data
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise ValueError(f"chunk not followed by CRLF: {bytes(buffer[:2])!r}")
                del buffer[:2]
                self._mode = "chunk-size"
            else:  # "close": everything until the service closes the connection
                self._keep(buffer, len(buffer))
                buffer.clear()
                return

    def _head(self, head: str) -> None:
        lines = head.split("\r\n")
        matched = _STATUS_LINE.fullmatch(lines[0])
        if matched is None:
            raise ValueError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
        http11, status = matched[1] == "1", int(matched[2])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"not a header line: {line[:60]!r}")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:  # informational (100 Continue): the answer follows
            return
        self._status, self._headers = status, headers
        connection = headers.get("connection", "").lower()
        self._keep_alive = "close" not in connection if http11 else "keep-alive" in connection
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode = "chunk-size"
        elif "content-length" in headers:
            length = headers["content-length"]
            if not _DECIMAL.fullmatch(length.encode("latin-1")):
                raise ValueError(f"not a Content-Length: {length[:60]!r}")
            self._mode, self._left = "length", int(length)
        elif status in (204, 304):
            self._mode, self._left = "length", 0
        else:
            self._mode, self._keep_alive = "close", False

    def _keep(self, buffer: bytearray, n: int) -> None:
        """The first MAX_KEPT bytes of the body; the caller drops what it read from `buffer`."""
        room = MAX_KEPT - len(self._body)
        if room > 0 and n > 0:
            self._body += buffer[:min(n, room)]

    def _take(self, buffer: bytearray) -> bool:
        """Read what `buffer` holds of the `_left` bytes still due (a body, or a chunk's data): True once all came."""
        take = min(self._left, len(buffer))
        self._keep(buffer, take)
        del buffer[:take]
        self._left -= take
        return not self._left

    def _finish(self, done: asyncio.Future[Response]) -> None:
        self._mode = ""
        self.answers += 1
        self.reusable = self._keep_alive and not self._buffer and not self.closed
        done.set_result(Response(self._status, self._headers, bytes(self._body)))


Dial = Callable[[], Awaitable[Http1Connection]]


def _time_out(done: asyncio.Future[Response]) -> None:
    if not done.done():
        done.set_exception(TimeoutError("no answer in time"))


class Http1Pool:
    """Up to `size` keep-alive connections to one push service; a request waits for a free one."""

    def __init__(self, dial: Dial, size: int) -> None:
        self._dial = dial
        self._size = max(1, size)
        self._idle: list[Http1Connection] = []
        self._count = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[Http1Connection | None]] = deque()
        self._closed = False

    @property
    def connections(self) -> int:
        return self._count

    async def request(self, request: bytes, answer_within: float) -> Response:
        """Send `request` (head and body), all within `answer_within` seconds.  Before it is written:
        NotProcessed (no connection in time, could not connect) or what `Dial` raises otherwise (UnsafeHost);
        after: MaybeProcessed or TimeoutError.

        A reused connection lost before any byte of its answer (StaleConnection) is tried once more on a new
        connection, without failing the send: it is nearly always a keep-alive connection the service or a
        NAT had dropped, which must not back the whole service off.  The request may, rarely, have reached the
        service all the same: then it gets two copies of one message, at most, and the service worker drops
        the second by its campaign id (pwa/sw.js).  The worker's in-flight bound is unchanged: it counts
        sends, and this is one send."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + answer_within
        fresh = False
        while True:
            connection = self._idle_connection() if not fresh else None
            if connection is None:
                try:
                    async with asyncio.timeout_at(deadline):
                        connection = await self._acquire(fresh)
                except TimeoutError:  # every connection busy (or the dial slow) until the deadline
                    raise NotProcessed("no connection to the push service in time") from None
                except OSError as exc:  # refused, unreachable, TLS failed: the request never left
                    raise NotProcessed(f"connect: {exc}") from exc
            answer = connection.send(request)
            timer = loop.call_at(deadline, _time_out, answer)
            try:
                return await answer
            except StaleConnection:
                if fresh:
                    raise
                fresh = True
            finally:
                timer.cancel()
                self._release(connection)

    def _idle_connection(self) -> Http1Connection | None:
        """A kept-alive connection that is still open and was idle less than IDLE_SECONDS, or None."""
        idle = self._idle
        if not idle:
            return None
        oldest_kept = time.monotonic() - IDLE_SECONDS
        while idle and (idle[0].closed or idle[0].idle_since < oldest_kept):  # the oldest first: drop the stale
            idle.pop(0).close()
            self._count -= 1
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have been closed
            if not connection.closed:
                return connection
            self._count -= 1
        return None

    async def _acquire(self, fresh: bool = False) -> Http1Connection:
        """A connection: an idle one (unless `fresh`), a new one while under `size`, else the next released."""
        while True:
            if fresh:  # a new connection: make room by closing an idle one rather than reusing it
                if self._idle and self._count >= self._size:
                    self._idle.pop(0).close()
                    self._count -= 1
            else:
                connection = self._idle_connection()
                if connection is not None:
                    return connection
            if self._count < self._size:
                self._count += 1
                try:
                    return await self._dial()
                except BaseException:
                    self._count -= 1
                    self._wake(None)
                    raise
            waiter: asyncio.Future[Http1Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # woken just as this request was cancelled
                    given = waiter.result()
                    if given is not None:
                        self._release(given)
                    else:
                        self._wake(None)
                raise
            if handed is not None:
                if not fresh:
                    return handed
                self._release(handed)  # back to the pool: the loop above closes an idle one to dial anew

    def _release(self, connection: Http1Connection) -> None:
        if connection.reusable and not connection.closed and not self._closed:
            connection.idle_since = time.monotonic()
            if not self._wake(connection):
                self._idle.append(connection)
            return
        connection.close()
        self._count -= 1
        self._wake(None)  # a slot is free: a waiter dials

    def _wake(self, connection: Http1Connection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    def close(self) -> None:
        """Close the idle connections now, the others as their answers come."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        self._count -= len(idle)
