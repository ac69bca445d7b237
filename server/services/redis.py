"""Redis client factory (redis.asyncio)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

# Connections one client opens at most. redis-py's default pool has 100 too, but raises MaxConnectionsError at
# once when all are busy: under a backlog (hundreds of requests in flight, each holding a connection until this
# process's loop comes round to read its answer) that error made the public cache and the rate limiter take
# healthy Redis for down, and sent every read to MongoDB (bench/load.py, issue 13). A blocking pool makes a
# request wait its turn for a connection instead: back-pressure, not an outage.
MAX_CONNECTIONS = 100
# Seconds a command waits for a free connection before failing with ConnectionError("No connection
# available."). Well under the public cache's and the rate limiter's own 3 s call limit, so that a backlog
# shows up to them as this error (which they take for busy: that call falls back alone, see
# availability.pool_busy), not as their call timing out, which a hung Redis also does and which pauses them.
POOL_WAIT_SECONDS = 0.75


SOCKET_TIMEOUT_SECONDS = 5.0


def connect(url: str, *, decode_responses: bool = True, max_connections: int = MAX_CONNECTIONS,
            socket_timeout: float | None = SOCKET_TIMEOUT_SECONDS) -> Redis:
    """`socket_timeout=None` only for a client whose every call has a deadline of its own (the public cache's):
    redis-py then sends without a task of its own per command (asyncio.wait_for) and reads without a timer."""
    # Two quick retries cover a pooled connection that died with a Redis restart; the client's default
    # (ten, backing off up to a second) would hold every request for seconds while Redis is really down.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, decode_responses=decode_responses,
        socket_connect_timeout=2, socket_timeout=socket_timeout,
        retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.2), 2))
    return Redis.from_pool(pool)  # the client owns the pool: closing it disconnects them all
