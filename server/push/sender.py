"""Sends encoded messages: one aiohttp session per push service, bounded concurrency, typed outcomes.

aiohttp rather than httpx (the rest of the stack's HTTP client) on this one path: a fan-out is nothing but
small POSTs, and bench/push_fanout.py measured an httpx POST at 1.0-3.3 ms of CPU here against 0.11 ms
for aiohttp (pywebpush's own async client) — with httpx a worker managed 7 % of the encryption floor.
aiohttp speaks HTTP/1.1 only; each push service gets a pool of keep-alive connections instead of one
multiplexed HTTP/2 connection.  Its resolver is the SSRF guard's, so a connection goes only to an address
that was checked.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from server.observability.metrics import observe_push_send
from server.push.encode import EncodedMessage
from server.push.hosts import RESOLVE_CACHE_SECONDS, HostGuard, UnsafeHost
from server.push.vapid import VapidSigner, endpoint_prefix, origin_of


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


class PushSender:
    def __init__(self, signer: VapidSigner, guard: HostGuard, *, concurrency: int = 100, timeout: float = 10.0,
                 max_connections_per_service: int = 50, clock: Callable[[], float] = time.monotonic) -> None:
        self._signer = signer
        self._guard = guard
        self._semaphore = asyncio.Semaphore(concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections_per_service
        self._clients: dict[str, aiohttp.ClientSession] = {}
        self._hosts: dict[str, str] = {}
        self._paused_until: dict[str, float] = {}
        self._safe_until: dict[str, float] = {}
        self._clock = clock

    def client_for(self, origin: str) -> aiohttp.ClientSession:
        """One session per push service: its keep-alive connections carry every message of a campaign."""
        client = self._clients.get(origin)
        if client is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, resolver=GuardedResolver(self._guard),
                                             use_dns_cache=False)  # the guard caches its checked answers
            client = aiohttp.ClientSession(connector=connector, timeout=self._timeout, auto_decompress=False,
                                           skip_auto_headers=("User-Agent", "Content-Type"))
            self._clients[origin] = client
            self._hosts[origin] = urlsplit(origin).hostname or origin
        return client

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
        headers = dict(message.headers)
        headers["Authorization"] = self._signer.header_for_origin(origin)
        client = self.client_for(origin)
        async with self._semaphore:
            started = time.perf_counter()
            try:
                async with client.post(endpoint, data=message.body, headers=headers,
                                       allow_redirects=False) as response:
                    status = response.status
                    retry_header = response.headers.get("retry-after")
                    text = "" if status in (201, 202) else (await response.content.read(400)).decode(
                        "utf-8", "replace")
            except UnsafeHost as exc:  # the resolver refused what the DNS answers now
                return SendResult(Outcome.BLOCKED, detail=str(exc))
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, UnsafeHost):
                    return SendResult(Outcome.BLOCKED, detail=str(exc.os_error))
                return SendResult(Outcome.RETRYABLE, detail=f"connect: {exc}")  # the message never left us
            except TimeoutError:
                return SendResult(Outcome.RETRYABLE, detail="timeout: no answer in time", posted=True)
            except aiohttp.ClientError as exc:
                return SendResult(Outcome.RETRYABLE, detail=f"{type(exc).__name__}: {exc}", posted=True)
            observe_push_send(self._hosts[origin], time.perf_counter() - started)
        outcome = outcome_of(status)
        retry_after = parse_retry_after(retry_header)
        if outcome is Outcome.RATE_LIMITED:
            retry_after = retry_after if retry_after is not None else 60.0
            self._paused_until[origin] = max(self._paused_until.get(origin, 0.0), self._clock() + retry_after)
        detail = "" if outcome is Outcome.DELIVERED else text[:200]
        return SendResult(outcome, status, retry_after, detail, posted=True)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, answered by the SSRF guard: only addresses it checked (and cached) are dialled."""

    def __init__(self, guard: HostGuard) -> None:
        self._guard = guard

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        found = []
        for address in await self._guard.addresses(host, port):
            kind = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (socket.AF_UNSPEC, kind):
                found.append(ResolveResult(hostname=host, host=address, port=port, family=kind, proto=0,
                                           flags=socket.AI_NUMERICHOST))
        if not found:
            raise OSError(f"{host} has no {family.name} address")
        return found

    async def close(self) -> None:
        return None
