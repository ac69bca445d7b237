"""Fail fast at start: one clear line per configuration problem, and a bounded wait for MongoDB."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from pymongo import AsyncMongoClient

from server.observability.logs import redact_text
from server.settings import Settings

MONGO_SCHEMES = ("mongodb", "mongodb+srv")
REDIS_SCHEMES = ("redis", "rediss", "unix")
MIN_SECRET = 32
MAX_BACKOFF = 10.0


def _hosts(parts: SplitResult) -> list[str]:
    netloc = parts.netloc.rpartition("@")[2]
    return netloc.split(",") if netloc else []


def _check_host(name: str, host: str) -> str | None:
    """None when `host[:port]` parses, else the problem."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return f"{name} has an unclosed IPv6 address {host!r}"
        hostname, rest = host[1:end], host[end + 1:]
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return f"{name} has an unparsable host {host!r}"
    else:
        hostname, sep, port_text = host.partition(":")
        port = port_text if sep else None
    if not hostname or any(c in hostname for c in " /?#@[]"):
        return f"{name} has an empty or unparsable host in {host!r}"
    if port is not None and not (port.isdigit() and 0 < int(port) <= 65535):
        return f"{name} has an invalid port {port!r} (want 1-65535)"
    return None


def url_problems(name: str, url: str, schemes: tuple[str, ...]) -> list[str]:
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return [f"{name} cannot be parsed: {exc}"]
    if parts.scheme not in schemes:
        return [f"{name} must use one of {', '.join(s + '://' for s in schemes)} (got {parts.scheme or 'none'}://)"]
    if parts.scheme == "unix":
        return [] if parts.path else [f"{name} needs a socket path, like unix:///run/redis.sock"]
    hosts = _hosts(parts)
    if not hosts:
        return [f"{name} names no host"]
    if parts.scheme == "mongodb+srv" and (len(hosts) > 1 or ":" in hosts[0]):
        return [f"{name}: mongodb+srv:// takes exactly one host name and no port"]
    if parts.scheme != "mongodb" and len(hosts) > 1:
        return [f"{name} names several hosts; Redis takes one"]
    return [p for p in (_check_host(name, h) for h in hosts) if p]


def problems(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem, one line each; empty when the settings are fit to start. SHANGQUAN_ENV=production
    adds the production rules."""
    env = os.environ if environ is None else environ
    out = url_problems("MONGODB_URL", settings.mongodb_url, MONGO_SCHEMES)
    out += url_problems("REDIS_URL", settings.redis_url, REDIS_SCHEMES)
    if env.get("SHANGQUAN_ENV", "").strip().lower() == "production":
        if not settings.mongodb_url:
            out.append("MONGODB_URL must be set in production (the embedded server is for one machine)")
        if not settings.redis_url:
            out.append("REDIS_URL must be set in production (the embedded server is for one machine)")
        if not settings.session_secret:
            out.append(f"SESSION_SECRET must be set in production ({MIN_SECRET}+ random characters)")
        elif len(settings.session_secret) < MIN_SECRET:
            out.append(f"SESSION_SECRET is too short: {len(settings.session_secret)} characters, "
                       f"need at least {MIN_SECRET}")
        if settings.debug:
            out.append("DEBUG is on in production: it shows tracebacks to everyone; unset it")
    return out


def mongo_address(url: str) -> str:
    """host:port[,host:port] of a MongoDB URL, without credentials."""
    try:
        hosts = _hosts(urlsplit(url))
    except ValueError:
        return "(unparsable URL)"
    return ",".join(hosts) or "(no host)"


class MongoUnavailable(RuntimeError):
    pass


async def wait_for_mongo(url: str, attempts: int = 5, delay: float = 1.0, attempt_seconds: float = 2.0) -> None:
    """Ping until MongoDB answers; waits delay, 2·delay, 4·delay … (at most MAX_BACKOFF s) between attempts."""
    last = ""
    for attempt in range(attempts):
        try:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                url, serverSelectionTimeoutMS=int(attempt_seconds * 1000), connectTimeoutMS=int(attempt_seconds * 1000),
                timeoutMS=int(attempt_seconds * 1000))
        except Exception as exc:  # a malformed URL: no point retrying
            raise MongoUnavailable(redact_text(f"MONGODB_URL for {mongo_address(url)} is not usable: {exc}")) from None
        try:
            await client.admin.command("ping")
            return
        except Exception as exc:
            last = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0] or type(exc).__name__
        finally:
            await client.close()
        if attempt + 1 < attempts:
            await asyncio.sleep(min(delay * 2 ** attempt, MAX_BACKOFF))
    raise MongoUnavailable(redact_text(f"MongoDB at {mongo_address(url)} did not answer after {attempts} "
                                       f"attempts: {last}"))
