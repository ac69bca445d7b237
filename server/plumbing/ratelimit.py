"""Per-client rate limits: fixed-window counters in Redis, failing open while Redis does not answer.

A window is `window` seconds of the wall clock; its counter is one Redis key (INCRBY and EXPIRE in one
round trip), so every web process shares it. For the GraphQL budget a client is the account of a valid API
token, else its address; plain routes (back office, push clicks) count by address, since signing in is
among what they limit. uvicorn takes the address from X-Forwarded-For only when the peer is one of
FORWARDED_ALLOW_IPS (default 127.0.0.1), so a client cannot choose its own key. IPv6 clients count per
/64, the block one subscriber usually holds.

Limits protect the service; they are not worth an outage. When Redis fails, `charge` lets the request
through, warns at most once a minute, and leaves Redis alone for a moment so requests do not each wait
for it, unless this process's own event loop was behind during the call or its Redis pool had no free
connection (then Redis is not to blame).
`required=True` is for writes that need Redis anyway: they fail with ServiceUnavailable instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.plumbing.auth import client_ip
from server.services import loop_lag
from server.services.availability import ServiceUnavailable, WarnEvery, pool_busy, redis_refused

log = logging.getLogger("shangquan.ratelimit")
KEY_PREFIX = "rl:"
CALL_TIMEOUT = 3.0  # seconds: a limiter slower than this is treated as down (see server/services/public_cache.py)
PAUSE_AFTER_FAILURE = 2.0  # seconds without asking Redis after it failed
LIMITED_PREFIXES = ("/admin", "/push/")  # plain routes counted per client (GraphQL has its cost budget)


class Limiter:
    def __init__(self, redis: Redis, window: int) -> None:
        self.redis, self.window = redis, window
        self.paused_until = 0.0
        self.warn = WarnEvery(log, 60)
        loop_lag.watch()

    async def charge(self, bucket: str, client: str, amount: int, limit: int, *, required: bool = False) -> int:
        """Add `amount` to the client's counter; the seconds to wait when that passes `limit`, else 0."""
        if limit <= 0 and not required:
            return 0
        loop_lag.watch()  # a limiter made outside a running loop starts watching at its first charge
        if time.monotonic() < self.paused_until:
            if required:
                raise ServiceUnavailable("redis")
            return 0
        now = time.time()
        window_index = int(now // self.window)
        key = f"{KEY_PREFIX}{bucket}:{client}:{window_index}"
        started = time.monotonic()
        try:
            async with asyncio.timeout(CALL_TIMEOUT), self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, amount)
                pipe.expire(key, self.window + 1)
                used, _ = await pipe.execute()
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            if pool_busy(exc) or (not redis_refused(exc) and loop_lag.lagged_since(started)):
                # this process was busy (no free pooled connection) or behind (server/services/loop_lag.py),
                # not Redis: let this one through (a write that needs Redis still fails) and keep limiting the next
                if required:
                    raise ServiceUnavailable("redis") from exc
                return 0
            self.paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            if required:
                raise ServiceUnavailable("redis") from exc
            self.warn.warning("rate limits are off while Redis does not answer (%s)", type(exc).__name__)
            return 0
        if limit <= 0 or int(used) <= limit:
            return 0
        return max(1, math.ceil((window_index + 1) * self.window - now))


def client_key(connection: HTTPConnection) -> str:
    """The client's address (an IPv6 one by its /64)."""
    host = client_ip(connection)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip6:{ipaddress.ip_network(f'{address}/64', strict=False).network_address}"
    return f"ip:{address}"


def too_many(retry_after: int, message: str) -> Response:
    return JSONResponse({"error": message, "code": "RATE_LIMITED", "retryAfter": retry_after}, status_code=429,
                        headers={"Retry-After": str(retry_after)})


class RateLimitMiddleware:
    """Counts each request to the plain routes that work per request (back office, push clicks) per client.

    The PWA's files, probes and metrics are not counted (the back office's own CSS and JS are, as requests
    to /admin); GraphQL is charged by cost in server/api/budget.py,
    and sensors per key in server/web/ingest.py.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: a WebSocket, open for hours, keeps no frame of this layer (server/api/live).
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(LIMITED_PREFIXES):
            return self._limited(scope, receive, send)
        return self.app(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        limit = state.settings.rate_limit_requests
        limiter: Limiter | None = getattr(state, "limiter", None)
        if limit > 0 and limiter is not None:
            wait = await limiter.charge("req", client_key(HTTPConnection(scope)), 1, limit)
            if wait:
                await too_many(wait, f"too many requests; try again in {wait} s")(scope, receive, send)
                return
        await self.app(scope, receive, send)
