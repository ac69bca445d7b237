"""Failed coupon codes per client: someone trying codes at the counter or over the POS API is stopped.

A client is both its address and, when signed in, its account (a POS token is an account): a guesser
cannot reset the count by switching phones on one account or accounts on one network. Only refusals
count (unknown, malformed or another shop's code), so a busy counter redeeming real coupons never
meets the limit. Backed by the shared fixed-window Limiter; when Redis is down it fails open like the
rest of the rate limits.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.domain.actor import Actor
from server.plumbing.ratelimit import Limiter, client_key

BUCKET = "coupon-miss"


def clients(connection: HTTPConnection | None, actor: Actor) -> list[str]:
    keys = [client_key(connection)] if connection is not None else []
    if actor.account_id:
        keys.append(f"account:{actor.account_id}")
    return keys


async def wait_before_trying(limiter: Limiter | None, keys: list[str], limit: int) -> int:
    """Seconds this client must wait before its next code (0: go ahead)."""
    if limiter is None or limit <= 0:
        return 0
    waits = [await limiter.charge(BUCKET, key, 0, limit - 1) for key in keys]
    return max(waits, default=0)


async def count_miss(limiter: Limiter | None, keys: list[str], limit: int) -> None:
    if limiter is None or limit <= 0:
        return
    for key in keys:
        await limiter.charge(BUCKET, key, 1, limit)
