"""Redis client factory (redis.asyncio)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff


def connect(url: str, *, decode_responses: bool = True) -> Redis:
    # Two quick retries cover a pooled connection that died with a Redis restart; the client's default
    # (ten, backing off up to a second) would hold every request for seconds while Redis is really down.
    return Redis.from_url(url, decode_responses=decode_responses, socket_connect_timeout=2, socket_timeout=5,
                          retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.2), 2))
