"""Sends encoded messages: HTTP/2 where the push service offers it, else HTTP/1.1 keep-alive; typed outcomes.

An https push service is dialled with ALPN ["h2", "http/1.1"].  When it picks h2 (FCM, Apple), its messages
are multiplexed over a small pool of connections (server/push/http2.py), each carrying up to the service's
SETTINGS_MAX_CONCURRENT_STREAMS.  When it picks HTTP/1.1 (Mozilla's autopush) or is plain http (local test
services), a keep-alive pool carries them (server/push/http1.py; aiohttp before it, and httpx before that,
each cost more CPU per POST than the message's encryption).  Both dial only addresses the SSRF guard checked
at send time.

A push service that misbehaves (refuses connections, resets streams, sends invalid frames) is backed off
per host, like one that answers 429: its messages are put back for later (RATE_LIMITED, not a failure) and
no more than `max_per_host` of the in-flight slots ever wait on one service, so the others keep going.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TypeVar
from urllib.parse import quote, urlsplit

from server.domain.push.endpoints import endpoint_prefix, origin_of
from server.domain.push.hosts import UnsafeHost
from server.observability.metrics import observe_push_send
from server.push.encode import EncodedMessage
from server.push.hosts import RESOLVE_CACHE_SECONDS, HostGuard
from server.push.http1 import Http1Connection, Http1Pool
from server.push.http2 import Http2Connection, Http2Pool, MaybeProcessed, NotProcessed, Response, Unsendable
from server.push.vapid import VapidSigner

_C = TypeVar("_C")  # a connection of either protocol


class Outcome(StrEnum):
    DELIVERED = "delivered"  # 201/202
    EXPIRED = "expired"  # 404/410: the caller deletes the subscription
    TOO_LARGE = "too_large"  # 413
    RATE_LIMITED = "rate_limited"  # 429, or still inside that service's Retry-After
    RETRYABLE = "retryable"  # 5xx, timeouts, connection errors
    FAILED = "failed"  # any other answer (400, 401, 403, …): retrying will not help
    BLOCKED = "blocked"  # the endpoint's host is not a public address (SSRF guard)


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    status: int | None = None
    retry_after: float | None = None  # seconds, for RATE_LIMITED (and 5xx answers that say so)
    detail: str = ""
    posted: bool = False  # the request reached the push service (it answered, or went quiet after the request)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def outcome_of(status: int) -> Outcome:
    if status in (201, 202):
        return Outcome.DELIVERED
    if status in (404, 410):
        return Outcome.EXPIRED
    if status == 413:
        return Outcome.TOO_LARGE
    if status == 429:
        return Outcome.RATE_LIMITED
    if status >= 500:
        return Outcome.RETRYABLE
    return Outcome.FAILED


_PATH_SAFE = "/:@!$&'()*+,;=?~%-._"  # what a request target keeps as it is when an odd endpoint path is quoted
HTTP2_CONNECTIONS = 4  # per push service: a few, so one stalled connection is not the whole service
NOT_PROCESSED_RETRIES = 3  # a GOAWAY'd or refused stream is sent again at once, on another connection
HOST_SLOT_WAIT = 1.0  # seconds a send waits for one of its service's `max_per_host` slots
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0  # seconds a misbehaving push service is left alone, doubling


class PushSender:
    def __init__(self, signer: VapidSigner, guard: HostGuard, *, concurrency: int = 100, timeout: float = 10.0,
                 max_connections_per_service: int = 50, http2: bool = True,
                 http2_connections: int = HTTP2_CONNECTIONS, max_per_host: int | None = None,
                 ca_file: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._signer = signer
        self._guard = guard
        self._semaphore = asyncio.Semaphore(concurrency)
        self._timeout_s = timeout
        self._max_connections = max_connections_per_service
        self._http2 = http2
        self._http2_connections = http2_connections
        # one slow service may hold at most this many sends; the rest of its messages come back for later
        self._max_per_host = max_per_host if max_per_host is not None else max(1, concurrency * 3 // 4)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._answered_at: dict[str, float] = {}  # origin -> when it last answered (monotonic)
        self._header_cache: dict[tuple[object, ...], tuple[str, bytes, list[tuple[bytes, bytes]]]] = {}
        self._ssl = tls_context(ca_file, ["http/1.1"])
        self._h2_ssl = tls_context(ca_file, ["h2", "http/1.1"])
        self._pools: dict[str, Http2Pool] = {}
        self._backoff: dict[str, float] = {}  # origin -> current backoff (seconds) after misbehaviour
        self.protocols: dict[str, str] = {}  # origin -> "h2" or "http/1.1", as negotiated
        self._h1_pools: dict[str, Http1Pool] = {}
        self._hosts: dict[str, str] = {}
        self._paused_until: dict[str, float] = {}
        self._safe_until: dict[str, float] = {}
        self._clock = clock

    def _h1_pool(self, origin: str) -> Http1Pool:
        """One pool per push service: its keep-alive connections carry every message of a campaign."""
        pool = self._h1_pools.get(origin)
        if pool is None:
            parts = urlsplit(origin)
            host = parts.hostname or ""
            https = parts.scheme == "https"
            port = parts.port or (443 if https else 80)

            async def connect(address: str, within: float) -> Http1Connection:
                loop = asyncio.get_running_loop()
                _, connection = await asyncio.wait_for(loop.create_connection(
                    Http1Connection, address, port, ssl=self._ssl if https else None,
                    server_hostname=host if https else None), within)
                return connection

            async def dial() -> Http1Connection:
                return await self._dial_checked(host, port, connect)

            pool = self._h1_pools[origin] = Http1Pool(dial, self._max_connections)
        return pool

    async def _dial_checked(self, host: str, port: int, connect: Callable[[str, float], Awaitable[_C]]) -> _C:
        """`connect` to each address the guard checks now (no rebinding inside), in turn, until one answers:
        the lookup and every attempt share one deadline, and each attempt gets at most its share of what is left,
        so an address that swallows packets does not use up the time of the ones after it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        async with asyncio.timeout_at(deadline):
            addresses = await self._guard.addresses(host, port)
        failure: OSError | None = None
        for left, address in zip(range(len(addresses), 0, -1), addresses, strict=True):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                return await connect(address, remaining / left)
            except OSError as exc:  # refused, unreachable, timed out (TimeoutError), TLS failed (SSLError)
                failure = exc
        raise failure or TimeoutError(f"could not connect to {host} in time")

    def paused_for(self, origin: str) -> float:
        """Seconds this push service asked us to wait (429 Retry-After); 0 when it may be called."""
        return max(0.0, self._paused_until.get(origin, 0.0) - self._clock())

    async def _check(self, endpoint: str, prefix: str) -> None:
        """The SSRF guard, whose verdict on a push service (scheme, host, port) is reused like its DNS answers."""
        now = time.monotonic()
        if self._safe_until.get(prefix, 0.0) > now:
            return
        await self._guard.check_url(endpoint)
        if len(self._safe_until) > 10_000:
            self._safe_until.clear()
        self._safe_until[prefix] = now + RESOLVE_CACHE_SECONDS

    async def send(self, message: EncodedMessage) -> SendResult:
        """Never raises for what the push service (or the network) answers."""
        endpoint = message.endpoint
        prefix = endpoint_prefix(endpoint)
        try:
            origin = origin_of(endpoint)
            await self._check(endpoint, prefix)
        except (UnsafeHost, ValueError) as exc:
            return SendResult(Outcome.BLOCKED, detail=str(exc))
        wait = self.paused_for(origin)
        if wait > 0:
            return SendResult(Outcome.RATE_LIMITED, retry_after=wait, detail="push service asked to wait")
        host_slots = self._host_slots.get(origin)
        if host_slots is None:
            host_slots = self._host_slots[origin] = asyncio.Semaphore(self._max_per_host)
            # a new service has the send timeout to answer at all (TLS handshakes of a busy process included)
            self._answered_at[origin] = time.monotonic() + max(0.0, self._timeout_s - HOST_SLOT_WAIT)
        if not await self._host_slot(origin, host_slots):
            return SendResult(Outcome.RATE_LIMITED, retry_after=HOST_SLOT_WAIT,
                              detail="push service is slow to answer")
        block, fields = self._headers(message, origin)
        path = endpoint[len(prefix):] or "/"
        try:
            async with self._semaphore:
                started = time.perf_counter()
                if self._http2 and origin.startswith("https:") and not self._pool(origin).http1:
                    sent = await self._send_h2(origin, path, block, fields, message.body)
                else:
                    sent = await self._send_h1(origin, path, block, message.body)
                if sent.status is not None:
                    self._answered_at[origin] = time.monotonic()
                    host = self._hosts.get(origin)
                    if host is None:
                        host = self._hosts[origin] = urlsplit(origin).hostname or origin
                    observe_push_send(host, time.perf_counter() - started)
        finally:
            host_slots.release()
        return self._settle(origin, sent)

    async def _host_slot(self, origin: str, slots: asyncio.Semaphore) -> bool:
        """One of the service's `max_per_host` slots.  While the service keeps answering (however busy this
        process is), wait for it; once it has answered nothing for HOST_SLOT_WAIT, give the message back."""
        if not slots.locked():  # a free slot: taken at once, without arming a timeout per message
            await slots.acquire()
            return True
        while True:
            try:
                async with asyncio.timeout(HOST_SLOT_WAIT):
                    await slots.acquire()
                return True
            except TimeoutError:
                if time.monotonic() - self._answered_at.get(origin, 0.0) > HOST_SLOT_WAIT:
                    return False

    def _headers(self, message: EncodedMessage, origin: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The request headers with Authorization, as an HTTP/1.1 block (with Host) and as h2 fields: built
        once per (campaign headers, push service) and reused until the VAPID token is renewed."""
        authorization = self._signer.header_for_origin(origin)
        key = (message.header_key, origin) if message.header_key else None
        cached = self._header_cache.get(key) if key is not None else None
        if cached is not None and cached[0] is authorization:
            return cached[1], cached[2]
        headers = {**message.headers, "Authorization": authorization}
        fields = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        block = b"".join(b"%s: %s\r\n" % field for field in [(b"host", origin.split("//", 1)[1].encode()), *fields])
        if key is not None:
            if len(self._header_cache) > 10_000:
                self._header_cache.clear()
            self._header_cache[key] = (authorization, block, fields)
        return block, fields

    def _settle(self, origin: str, sent: SendResult) -> SendResult:
        if sent.outcome is Outcome.RATE_LIMITED and sent.status == 429:
            retry_after = sent.retry_after if sent.retry_after is not None else 60.0
            self._paused_until[origin] = max(self._paused_until.get(origin, 0.0), self._clock() + retry_after)
            return SendResult(sent.outcome, sent.status, retry_after, sent.detail, sent.posted)
        if sent.status is None and sent.outcome is Outcome.RETRYABLE:  # the service misbehaved, not answered
            backoff = min(BACKOFF_MAX, self._backoff.get(origin, BACKOFF_FIRST / 2) * 2)
            self._backoff[origin] = backoff
            self._paused_until[origin] = max(self._paused_until.get(origin, 0.0), self._clock() + backoff)
        elif sent.status is not None:
            self._backoff.pop(origin, None)
        return sent

    async def _send_h1(self, origin: str, path: str, block: bytes, body: bytes) -> SendResult:
        target = path if path.isascii() and path.isprintable() and " " not in path else quote(path, safe=_PATH_SAFE)
        request = b"POST %s HTTP/1.1\r\n%scontent-length: %d\r\n\r\n%s" % (target.encode(), block, len(body), body)
        try:
            answer = await self._h1_pool(origin).request(request, self._timeout_s)
        except UnsafeHost as exc:  # the guard refused what the DNS answers now
            return SendResult(Outcome.BLOCKED, detail=str(exc))
        except NotProcessed as exc:
            return SendResult(Outcome.RETRYABLE, detail=str(exc))  # the message never left us
        except TimeoutError:
            return SendResult(Outcome.RETRYABLE, detail="timeout: no answer in time", posted=True)
        except MaybeProcessed as exc:
            return SendResult(Outcome.RETRYABLE, detail=str(exc), posted=True)
        self.protocols.setdefault(origin, "http/1.1")
        return self._answered(answer)

    @staticmethod
    def _answered(answer: Response) -> SendResult:
        """The outcome of an answer of either protocol (the two share Response)."""
        outcome = outcome_of(answer.status)
        detail = "" if outcome is Outcome.DELIVERED else answer.body[:400].decode("utf-8", "replace")[:200]
        return SendResult(outcome, answer.status, parse_retry_after(answer.headers.get("retry-after")), detail,
                          posted=True)

    def _pool(self, origin: str) -> Http2Pool:
        pool = self._pools.get(origin)
        if pool is None:
            parts = urlsplit(origin)
            host, port = parts.hostname or "", parts.port or 443
            authority = origin.split("//", 1)[1]

            async def connect(address: str, within: float) -> Http2Connection | None:
                return await Http2Connection.open(address, port, host, authority, self._h2_ssl, within)

            async def dial() -> Http2Connection | None:
                connection = await self._dial_checked(host, port, connect)
                self.protocols[origin] = "h2" if connection is not None else "http/1.1"
                return connection

            pool = self._pools[origin] = Http2Pool(dial, self._http2_connections)
        return pool

    async def _send_h2(self, origin: str, path: str, block: bytes, fields: list[tuple[bytes, bytes]],
                       body: bytes) -> SendResult:
        pool = self._pool(origin)
        for _ in range(NOT_PROCESSED_RETRIES):
            try:
                connection = await pool.acquire()
            except UnsafeHost as exc:
                return SendResult(Outcome.BLOCKED, detail=str(exc))
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                return SendResult(Outcome.RETRYABLE, detail=f"connect: {exc}")  # the message never left us
            if connection is None:  # the service chose HTTP/1.1
                return await self._send_h1(origin, path, block, body)
            try:
                answer = await connection.request(path, fields, body, self._timeout_s)
            except NotProcessed:
                continue  # GOAWAY'd or refused: it never reached the service, so send it again now
            except Unsendable as exc:
                return SendResult(Outcome.FAILED, detail=str(exc))
            except MaybeProcessed as exc:
                return SendResult(Outcome.RETRYABLE, detail=str(exc), posted=True)
            except TimeoutError:
                return SendResult(Outcome.RETRYABLE, detail="timeout: no answer in time", posted=True)
            return self._answered(answer)
        return SendResult(Outcome.RETRYABLE, detail="streams refused again and again")

    async def aclose(self) -> None:
        h1_pools, self._h1_pools = list(self._h1_pools.values()), {}
        for h1_pool in h1_pools:
            h1_pool.close()
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def tls_context(ca_file: str | None, alpn: list[str]) -> ssl.SSLContext:
    """The system's trust store (or SSL_CERT_FILE), plus `ca_file` when given (a test CA)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(alpn)
    return context
