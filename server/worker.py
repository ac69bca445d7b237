"""The worker process: push fan-out (server/push/fanout.py), crowd alerts and housekeeping.

Crowd alerts arrive on the Redis Stream `crowd_alerts`; a consumer group lets
any number of workers share them, and an entry is acknowledged only after it
was handled, so a worker that dies leaves its entries to be reclaimed.

SIGTERM (or SIGINT) stops taking new work: the push batches in hand are finished and their outcomes
written, then the process exits 0.  With WORKER_METRICS_PORT set, the worker serves Prometheus metrics
on WORKER_METRICS_HOST (127.0.0.1) and refreshes the stream gauges every STREAM_GAUGES_EVERY seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import start_http_server
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from server.api.ids import to_global
from server.domain.crowd import repository as crowd_repository
from server.domain.crowd.alerts import STREAM
from server.domain.push import crowd_messages
from server.domain.push.retention import purge_deliveries
from server.observability.logs import configure_logging
from server.observability.metrics import MongoMetrics, refresh_stream_gauges
from server.push import fanout
from server.push.hosts import HostGuard
from server.push.sender import PushSender
from server.push.vapid import VapidSigner, keys_for_settings
from server.services import mongo, public_cache, redis
from server.services.availability import outage
from server.services.mongo import Doc
from server.settings import Settings, SettingsError

log = logging.getLogger("shangquan.worker")
GROUP = "workers"
PURGE_EVERY = timedelta(hours=1)
RECLAIM_IDLE_MS = 60_000
STREAM_GAUGES_EVERY = 5.0


async def _ensure_group(redis_client: Redis) -> None:
    with contextlib.suppress(ResponseError):  # BUSYGROUP: another worker made it first
        await redis_client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)


async def handle_alert(db: AsyncDatabase[Doc], redis_client: Redis, settings: Settings,
                       fields: dict[str, str]) -> None:
    """A raised crowd alert becomes a campaign to the district's crowd-alert subscribers (see crowd_messages)."""
    alert_id, district_id = fields.get("alert_id", ""), fields.get("district_id", "")
    campaign, why = await crowd_messages.campaign_for_alert(
        db, redis_client, alert_id, now=datetime.now(UTC), cooldown_minutes=settings.crowd_alert_cooldown_minutes,
        district_url=f"/d/{to_global('District', district_id)}")
    outcome = f"campaign {campaign.id} ({why})" if campaign else f"no message ({why})"
    log.info("crowd alert %s for area %s in %s (%s): %s", alert_id, fields.get("area_id"), district_id,
             fields.get("level"), outcome)


async def consume_alerts(db: AsyncDatabase[Doc], redis_client: Redis, settings: Settings, consumer: str,
                         stop: asyncio.Event) -> None:
    # A crowd alert's campaign lands in the inbox, whose answers the web processes cache: this loop tells
    # the public cache as a web request would (server/services/public_cache.py `changed`).
    public_cache.bind(public_cache.PublicCache(redis_client, settings.mongodb_db, enabled=settings.public_cache,
                                               max_entry_bytes=settings.public_cache_max_entry_bytes))
    with contextlib.suppress(RedisError):  # Redis away: the loop below retries, and makes the group then
        await _ensure_group(redis_client)
    while not stop.is_set():
        try:
            # entries a dead worker read but never acknowledged come back after a minute
            claimed: Any = await redis_client.xautoclaim(STREAM, GROUP, consumer, RECLAIM_IDLE_MS, "0-0", count=50)
            batches: Any = await redis_client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=50, block=1000)
        except RedisError as exc:
            outage("redis").down(exc)  # told once, then at most once a minute; retried every second
            await asyncio.sleep(1)
            with contextlib.suppress(RedisError):
                await _ensure_group(redis_client)
            continue
        outage("redis").up()
        entries = list(claimed[1]) + [entry for _, stream_entries in batches or [] for entry in stream_entries]
        for entry_id, fields in entries:
            try:
                await handle_alert(db, redis_client, settings, fields)
            except Exception:  # left pending: reclaimed and retried after RECLAIM_IDLE_MS
                log.exception("crowd alert %s failed", fields.get("alert_id"))
                continue
            await redis_client.xack(STREAM, GROUP, entry_id)


async def purge(db: AsyncDatabase[Doc], settings: Settings, stop: asyncio.Event) -> None:
    """Retention: crowd readings (for servers without TTL indexes, like the embedded one; a no-op where the TTL
    index already did it) and the delivery records of old campaigns."""
    while not stop.is_set():
        now = datetime.now(UTC)
        days = settings.crowd_retention_days
        try:
            readings = await crowd_repository.purge_readings(db, now - timedelta(days=days))
            if readings:
                log.info("purged %d crowd readings older than %d days", readings, days)
            deliveries = await purge_deliveries(db, settings.push_delivery_retention_days, now)
            if deliveries:
                log.info("purged %d push delivery records older than %d days", deliveries,
                         settings.push_delivery_retention_days)
        except Exception:  # MongoDB away for a moment: the next round catches up; the fan-out must go on
            log.exception("retention purge failed; retrying in an hour")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PURGE_EVERY.total_seconds())


async def watch_streams(redis_client: Redis, stop: asyncio.Event) -> None:
    """Keeps the stream backlog and pending-age gauges current for this worker's /metrics."""
    streams = [(fanout.STREAM, fanout.GROUP), (STREAM, GROUP)]
    while not stop.is_set():
        try:
            await refresh_stream_gauges(redis_client, streams)
        except RedisError as exc:
            log.warning("stream gauges not refreshed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=STREAM_GAUGES_EVERY)


def serve_metrics(settings: Settings) -> Callable[[], None]:
    """Prometheus' own HTTP server on WORKER_METRICS_PORT (a daemon thread); returns how to stop it."""
    server, thread = start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    log.info("worker metrics on http://%s:%d/metrics", settings.worker_metrics_host, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


async def _wait_for_redis(redis_client: Redis, stop: asyncio.Event) -> None:
    """A worker (re)started while Redis is away waits for it rather than exiting: everything it does needs it."""
    delay = 0.5
    told = False
    while not stop.is_set():
        try:
            await redis_client.ping()
            outage("redis").up()
            return
        except RedisError as exc:
            if not told:
                told = True
                log.warning("worker waits for Redis (%s); retrying until it answers", type(exc).__name__)
            outage("redis").down(exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, 10.0)


async def run_worker(settings: Settings, mongodb_url: str, redis_url: str, stop: asyncio.Event,
                     ready: asyncio.Event | None = None) -> None:
    """Until `stop`; `ready` is set once it takes work (single-machine mode's banner waits for it)."""
    metrics_on = settings.worker_metrics_port > 0
    client = mongo.connect(mongodb_url, listeners=[MongoMetrics()] if metrics_on else None)
    redis_client = redis.connect(redis_url)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    stop_metrics = serve_metrics(settings) if metrics_on else None
    try:
        db = client[settings.mongodb_db]
        await db.command("ping")
        await _wait_for_redis(redis_client, stop)
        keys = await keys_for_settings(db, settings)
        sender = PushSender(VapidSigner(keys, settings.vapid_subject),
                            HostGuard(allow_local=settings.allow_local_push_services, production=settings.production))
        config = fanout.FanoutConfig.from_settings(settings)
        tasks = [consume_alerts(db, redis_client, settings, consumer, stop),
                 purge(db, settings, stop),
                 fanout.consume(db, redis_client, sender, consumer, stop, config)]
        if metrics_on:
            tasks.append(watch_streams(redis_client, stop))
        # Start-up objects (modules, clients, keys) live as long as the process: keep them out of every
        # collection, so the fan-out's many short-lived objects are all the collector walks.
        gc.collect()
        gc.freeze()
        log.info("worker %s ready", consumer)
        if ready is not None:
            ready.set()
        try:
            await asyncio.gather(*tasks)
        finally:
            await sender.aclose()
    finally:
        await redis_client.aclose()
        await client.close()
        if stop_metrics is not None:
            stop_metrics()
        log.info("worker stopped")


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None  # one line, no traceback
    configure_logging(settings.log_level, json=settings.log_json)
    if not settings.mongodb_url or not settings.redis_url:
        raise SystemExit("the worker needs MONGODB_URL and REDIS_URL (python -m server runs one for you)")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, settings.mongodb_url, settings.redis_url, stop)

    with event_loop_runner() as runner:
        runner.run(run())


def event_loop_runner() -> asyncio.Runner:
    """uvloop's event loop where it is installed (uvicorn[standard] brings it everywhere but Windows), else
    asyncio's.  The fan-out is small TLS reads and writes and many short tasks: asyncio's pure-Python TLS
    transport and scheduling were a large share of a worker's CPU per message (bench/push_fanout.py --py-spy),
    and uvloop does both in C."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows and PyPy
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


if __name__ == "__main__":
    main()
