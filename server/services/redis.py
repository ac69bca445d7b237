"""Redis client factory (redis.asyncio)."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=5)
