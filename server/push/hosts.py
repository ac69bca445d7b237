"""SSRF guard: a push endpoint must name a public host, checked at subscribe time and again before each send."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Awaitable[list[str]]]

# A resolution is reused this long, so a campaign does not ask DNS once per message.
RESOLVE_CACHE_SECONDS = 60.0


class UnsafeHost(ValueError):
    """The endpoint's host is (or resolves to) an address a push service never has."""


def check_allow_local(allow_local: bool, production: bool) -> None:
    """Reaching a push service on 127.0.0.1 is for tests and benchmarks only."""
    if allow_local and production:
        raise ValueError("allow_local_push_services must be off in production")


def is_public_address(address: str) -> bool:
    """Globally routable unicast: not private, loopback, link-local, multicast, reserved or unspecified."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


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
        if scheme != "https" and not (self.allow_local and scheme == "http"):
            raise UnsafeHost(f"push endpoints must use https, not {scheme or 'nothing'}")

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
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            if not self.allow_local and (host.lower().rstrip(".") in {"localhost", "localhost.localdomain"}
                                         or host.lower().endswith(".localhost")):
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
