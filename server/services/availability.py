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


def redis_refused(exc: BaseException) -> bool:
    """Whether Redis refused the connection (in `exc` or what it wraps): nothing listens, so Redis is down
    however busy this process was (redis-py wraps the OSError in its own ConnectionError)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def pool_busy(exc: BaseException) -> bool:
    """Whether `exc` is this process's Redis pool having no free connection within its wait (redis-py's
    BlockingConnectionPool raises ConnectionError("No connection available.") from its TimeoutError): every
    connection is in use by this process's own requests, which says it is busy, not that Redis is down."""
    return (isinstance(exc, RedisConnectionError) and str(exc) == POOL_BUSY
            and isinstance(exc.__cause__, TimeoutError))


POOL_BUSY = "No connection available."  # redis-py's message (redis/asyncio/connection.py, BlockingConnectionPool)


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


# What still works while a service is down, for the one warning an outage gets.
STILL_WORKS = {
    "redis": "reads, pages and the PWA still work; sign-in, sensor batches, live updates and push sending wait "
             "until it is back",
    "mongodb": "the PWA's shell and saved screens still load; the API and back office answer 503 until it is back",
}
LABELS = {"redis": "Redis", "mongodb": "MongoDB"}
STILL_DOWN_EVERY = 60.0
# Each client (web, worker, hubs) finds out on its own: a "lost" this soon after "back" is one of them
# catching up with the same outage, not a new one.
REOPEN_SECONDS = 10.0


class Outage:
    """One data service's outage as this process sees it, logged calmly: a warning when it starts, naming what
    still works; "still down" at most once a minute; one line when it is back.  Every part of the process
    (web, hubs, worker loops, push consumers) reports to the same Outage, so an outage is told once, not once
    per loop per second."""

    log = logging.getLogger("shangquan.outage")

    def __init__(self, service: str, every: float = STILL_DOWN_EVERY) -> None:
        self.service, self.every = service, every
        self.since: float | None = None
        self.last = 0.0
        self.back_at = -REOPEN_SECONDS
        self.quiet = False  # reopened just after "back": one client noticed later than another

    @property
    def down_now(self) -> bool:
        return self.since is not None

    def down(self, reason: BaseException | str) -> None:
        now = time.monotonic()
        why = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason
        label = LABELS.get(self.service, self.service)
        if self.since is None:
            self.since = self.last = now
            self.quiet = now - self.back_at < REOPEN_SECONDS
            if not self.quiet:
                self.log.warning("lost %s (%s); %s", label, why, STILL_WORKS.get(self.service, "retrying"))
        elif now - self.last >= self.every:
            self.last = now
            self.log.warning("%s still down after %.0f s (%s); retrying", label, now - self.since, why)

    def up(self) -> None:
        if self.since is None:
            return
        since, self.since = self.since, None
        self.back_at = time.monotonic()
        if not self.quiet:
            self.log.warning("%s is back after %.1f s", LABELS.get(self.service, self.service), self.back_at - since)


_outages: dict[str, Outage] = {}


def outage(service: str) -> Outage:
    """This process's Outage for "redis" or "mongodb"."""
    if service not in _outages:
        _outages[service] = Outage(service)
    return _outages[service]
