"""Server-side sessions in Redis, named by a signed cookie.

The cookie holds only a random session id and its HMAC; the session itself
(account, creation time) lives in Redis with an idle TTL refreshed on use and
an absolute lifetime checked on read.  Every session of an account is listed
in a set, so "log out everywhere" deletes them all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    secret: bytes
    idle_seconds: int = 30 * 60
    absolute_seconds: int = 12 * 3600


def _sign(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def cookie_value(policy: SessionPolicy, session_id: str) -> str:
    return f"{session_id}.{_sign(policy.secret, session_id)}"


def session_id_from_cookie(policy: SessionPolicy, cookie: str | None) -> str | None:
    if not cookie or len(cookie) > 200 or "." not in cookie:
        return None
    session_id, signature = cookie.rsplit(".", 1)
    return session_id if hmac.compare_digest(signature, _sign(policy.secret, session_id)) else None


def csrf_token(policy: SessionPolicy, session_id: str) -> str:
    """Bound to the session: a form from another site cannot know it."""
    return _sign(policy.secret, f"csrf:{session_id}")


async def create(redis: Redis, policy: SessionPolicy, account_id: str) -> str:
    session_id = secrets.token_urlsafe(32)
    key = f"session:{session_id}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"account_id": account_id, "created": str(int(time.time()))})
        pipe.expire(key, policy.idle_seconds)
        pipe.sadd(f"account_sessions:{account_id}", session_id)
        pipe.expire(f"account_sessions:{account_id}", policy.absolute_seconds)
        await pipe.execute()
    return session_id


async def resolve(redis: Redis, policy: SessionPolicy, session_id: str) -> str | None:
    """The account of a live session (refreshing its idle timer), or None."""
    key = f"session:{session_id}"
    data = await redis.hgetall(key)
    if not data:
        return None
    account_id = str(data.get("account_id", ""))
    if int(data.get("created", 0)) + policy.absolute_seconds < time.time():
        await destroy(redis, session_id, account_id)
        return None
    await redis.expire(key, policy.idle_seconds)
    return account_id


async def destroy(redis: Redis, session_id: str, account_id: str | None = None) -> None:
    if account_id is None:
        stored = await redis.hget(f"session:{session_id}", "account_id")
        account_id = str(stored) if stored else None
    await redis.delete(f"session:{session_id}")
    if account_id:
        await redis.srem(f"account_sessions:{account_id}", session_id)


async def destroy_all(redis: Redis, account_id: str) -> int:
    session_ids = [str(s) for s in await redis.smembers(f"account_sessions:{account_id}")]
    if session_ids:
        await redis.delete(*(f"session:{s}" for s in session_ids))
    await redis.delete(f"account_sessions:{account_id}")
    return len(session_ids)
