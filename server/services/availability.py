"""When a data service is down: which errors say so, and warnings that do not flood the log during an outage."""

from __future__ import annotations

import logging
import time

from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Unreachable, not answering in time, or (MongoDB) without a primary: a retry later may succeed.
MONGO_DOWN: tuple[type[Exception], ...] = (ConnectionFailure,)
REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
RETRY_AFTER_SECONDS = 5  # what clients are told to wait when a data service is down


class ServiceUnavailable(Exception):
    """A request needs a data service that does not answer; HTTP 503, GraphQL SERVICE_UNAVAILABLE."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is unavailable")
        self.service = service


def down_service(exc: BaseException) -> str | None:
    """"mongodb" or "redis" when `exc` (or what it wraps) means that service is down, else None."""
    seen: BaseException | None = exc
    for _ in range(4):  # an error raised `from` the driver's own
        if seen is None:
            return None
        if isinstance(seen, ServiceUnavailable):
            return seen.service
        if isinstance(seen, MONGO_DOWN):
            return "mongodb"
        if isinstance(seen, REDIS_DOWN):
            return "redis"
        seen = seen.__cause__
    return None


class WarnEvery:
    """A logger's warning at most once per `seconds`, with how many were held back meanwhile."""

    def __init__(self, log: logging.Logger, seconds: float) -> None:
        self.log, self.seconds = log, seconds
        self.last = -seconds
        self.held = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < self.seconds:
            self.held += 1
            return
        if self.held:
            message += " (%d more like it since the last warning)"
            args = (*args, self.held)
        self.last, self.held = now, 0
        self.log.warning(message, *args)
