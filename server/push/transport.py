"""A lean HTTP/1.1 client for push services: per origin, a bounded pool of keep-alive connections.

A fan-out is nothing but small POSTs to a handful of origins, and on our machines an httpx POST costs about
1 ms of CPU (anyio, httpcore's pool, h11), six times the aes128gcm encryption it carries; this client writes
each request in one `write` and parses the answer in an `asyncio.Protocol`, for a few tens of microseconds.
It speaks only what RFC 8030 needs: POST with a body, answers with Content-Length, chunked or
close-delimited bodies, `Connection: close`.  One request per connection at a time (no pipelining), up to
`max_connections` per push service.  HTTP/2 (one TLS connection multiplexing thousands of pushes to FCM or
Mozilla autopush) would sit here too, on the sans-IO `h2` package; it is not done yet.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 1024 * 1024  # push services answer errors with a few hundred bytes


class TransportError(Exception):
    """The connection failed, closed early, or the answer was not HTTP/1.1 we understand."""


class ConnectFailed(TransportError):
    """No connection could be made, so the request never left this process."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._status = 0
        self._headers: dict[str, str] | None = None
        self._length: int | None = None  # None: chunked (self._chunked) or until close
        self._chunked = False
        self._body = bytearray()
        self._keep_alive = True
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            try:
                self._parse()
            except TransportError as exc:
                self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers is not None and self._length is None and not self._chunked:
            self._finish()  # a close-delimited body ends with the connection
        else:
            waiter.set_exception(TransportError(f"connection closed before the answer was complete ({exc})"))

    # client side
    async def exchange(self, request: bytes) -> Response:
        if self.closed or self._transport is None:
            raise TransportError("connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self.closed

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def _finish(self) -> None:
        response = Response(self._status, self._headers or {}, bytes(self._body))
        self._headers, self._body, self._length, self._chunked = None, bytearray(), None, False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(response)

    def _parse(self) -> None:
        while self._headers is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise TransportError("answer head too large")
                return
            self._parse_head(bytes(self._buffer[:end]).decode("latin-1"))
            del self._buffer[:end + 4]
        if self._chunked:
            self._parse_chunks()
        elif self._length is not None:
            if len(self._buffer) >= self._length:
                self._body += self._buffer[:self._length]
                del self._buffer[:self._length]
                self._finish()
        else:
            self._body += self._buffer
            self._buffer.clear()
            if len(self._body) > MAX_BODY:
                raise TransportError("answer body too large")

    def _parse_head(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise TransportError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise TransportError("malformed header line")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            return  # an interim answer: the real one follows
        self._status, self._headers = status, headers
        connection = headers.get("connection", "").lower()
        self._keep_alive = parts[0] == "HTTP/1.1" and "close" not in connection
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked, self._length = True, None
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise TransportError("bad Content-Length") from None
            if not 0 <= self._length <= MAX_BODY:
                raise TransportError("answer body too large")
        elif status in (204, 304):
            self._length = 0
        else:
            self._length, self._keep_alive = None, False

    def _parse_chunks(self) -> None:
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return
            try:
                size = int(bytes(self._buffer[:line_end]).split(b";", 1)[0], 16)
            except ValueError:
                raise TransportError("bad chunk size") from None
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n\r\n", line_end)  # "0\r\n", trailers, an empty line
                if trailer_end < 0:
                    return
                del self._buffer[:trailer_end + 4]
                self._finish()
                return
            if len(self._buffer) < line_end + 2 + size + 2:
                return
            self._body += self._buffer[line_end + 2:line_end + 2 + size]
            del self._buffer[:line_end + 2 + size + 2]
            if len(self._body) > MAX_BODY:
                raise TransportError("answer body too large")


class OriginPool:
    """Keep-alive connections to one origin (scheme://host:port), at most `max_connections` at once."""

    def __init__(self, origin: str, *, max_connections: int = 50, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.origin = origin
        self.host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl = ssl_context or _default_ssl()
        self._timeout = timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._open: set[_Connection] = set()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection, self.host, self._port, ssl=self._ssl,
                server_hostname=self.host if self._ssl else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from None
        return connection

    async def post(self, target: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """POST `body` to `target` (path and query); TimeoutError after `timeout` seconds in all."""
        if any(c in target for c in " \r\n") or not target.startswith("/"):
            raise ValueError("bad request target")
        lines = [f"POST {target} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(body)}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} has a line break")
            lines.append(f"{name}: {value}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self._slots, asyncio.timeout(self._timeout):
            connection = None
            while self._idle:
                candidate = self._idle.pop()
                if candidate.reusable:
                    connection = candidate
                    break
                self._open.discard(candidate)
            if connection is None:
                connection = await self._connect()
                self._open.add(connection)
            try:
                response = await connection.exchange(request)
            except BaseException:
                connection.close()
                self._open.discard(connection)
                raise
            if connection.reusable:
                self._idle.append(connection)
            else:
                connection.close()
                self._open.discard(connection)
            return response

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks


_ssl_context: ssl.SSLContext | None = None


def _default_ssl() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
        _ssl_context.set_alpn_protocols(["http/1.1"])
    return _ssl_context


def request_target(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
