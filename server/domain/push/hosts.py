"""Which push-service hosts a subscription may name: the SSRF rules, with no I/O.

The push engine's HostGuard (server/push/hosts.py) resolves names and caches the answers; subscribing sees it
only as an `EndpointGuard`, so the domain needs nothing from the engine.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol


class UnsafeHost(ValueError):
    """The endpoint's host is (or resolves to) an address a push service never has."""


class EndpointGuard(Protocol):
    """What subscribing asks of the host guard: the scheme, then the whole URL (which resolves its host)."""

    def check_scheme(self, scheme: str) -> None: ...

    async def check_url(self, url: str) -> None: ...


def check_allow_local(allow_local: bool, production: bool) -> None:
    """Reaching a push service on 127.0.0.1 is for tests and benchmarks only."""
    if allow_local and production:
        raise ValueError("allow_local_push_services must be off in production")


def check_scheme(scheme: str, allow_local: bool) -> None:
    if scheme != "https" and not (allow_local and scheme == "http"):
        raise UnsafeHost(f"push endpoints must use https, not {scheme or 'nothing'}")


def is_public_address(address: str) -> bool:
    """Globally routable unicast: not private, loopback, link-local, multicast, reserved or unspecified."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def literal_address(host: str) -> str | None:
    """The host as an IP address when it is one (brackets and a zone id stripped), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def is_local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in {"localhost", "localhost.localdomain"} or host.lower().endswith(".localhost")
