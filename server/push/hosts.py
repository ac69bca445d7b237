"""SSRF guard: a push endpoint must name a public host, checked at subscribe time and again before each send.

The rules are the domain's (server/domain/push/hosts.py); this adds resolving names, with a cache."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from server.domain.push.hosts import (
    UnsafeHost,
    check_allow_local,
    check_scheme,
    is_local_name,
    is_public_address,
    literal_address,
)

__all__ = ["RESOLVE_CACHE_SECONDS", "HostGuard", "Resolver", "system_resolve"]

Resolver = Callable[[str, int], Awaitable[list[str]]]

# A resolution is reused this long, so a campaign does not ask DNS once per message.
RESOLVE_CACHE_SECONDS = 60.0


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class HostGuard:
    """Resolves an endpoint's host and refuses it unless every address is public (or local pushing is allowed)."""

    def __init__(self, *, allow_local: bool = False, production: bool = False,
                 resolve: Resolver = system_resolve, cache_seconds: float = RESOLVE_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_allow_local(allow_local, production)
        self.allow_local = allow_local
        self._resolve = resolve
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}

    def check_scheme(self, scheme: str) -> None:
        check_scheme(scheme, self.allow_local)

    async def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        self.check_scheme(parts.scheme)
        if not parts.hostname:
            raise UnsafeHost("the endpoint has no host")
        await self.check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    async def check_host(self, host: str, port: int = 443) -> None:
        if self.allow_local:
            return
        await self.addresses(host, port)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, each checked: the sender connects only to these (its resolver), so
        a DNS answer that changes between the check and the connection (rebinding) cannot reach inside."""
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            if not self.allow_local and is_local_name(host):
                raise UnsafeHost(f"{host} is a local name")
            addresses = await self._resolved(host.lower(), port)
        if not addresses:
            raise UnsafeHost(f"{host} does not resolve")
        for address in addresses if not self.allow_local else ():
            if not is_public_address(address):
                raise UnsafeHost(f"{host} resolves to the non-public address {address}")
        return addresses

    async def _resolved(self, host: str, port: int) -> list[str]:
        now = self._clock()
        cached = self._cache.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise UnsafeHost(f"{host} does not resolve: {exc}") from None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(host, port)] = (now + self._cache_seconds, addresses)
        return addresses
