"""A push endpoint's origin and the base64url text of its keys (RFC 8291/8292): rules with no I/O.

Subscribing validates with them and the push engine (server/push/: VAPID, encryption, sending) reuses them, so
both read an endpoint and a key the same way.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from urllib.parse import urlsplit


class VapidError(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding; anything else (including the standard alphabet) is refused."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    bare = text.rstrip("=")
    if len(bare) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def origin_of(endpoint: str) -> str:
    """scheme://host[:port] of a push endpoint: the `aud` of its VAPID token."""
    return _origin_of_prefix(endpoint_prefix(endpoint))


def endpoint_prefix(endpoint: str) -> str:
    """The endpoint up to its path ("scheme://authority"); a fan-out sees a handful of these."""
    start = endpoint.find("//")
    cut = endpoint.find("/", start + 2) if start >= 0 else -1
    return endpoint if cut < 0 else endpoint[:cut]


@functools.lru_cache(maxsize=1024)
def _origin_of_prefix(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise VapidError(f"not a push endpoint URL: {endpoint[:80]!r}")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"https": 443, "http": 80}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"
