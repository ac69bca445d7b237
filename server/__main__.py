"""Single-machine mode and management commands.

    python -m server                 embedded MongoDB + Redis (unless MONGODB_URL / REDIS_URL), web and worker
    python -m server content load    validate content/ and write what changed
    python -m server schema          print the GraphQL schema, as checked in at graphql/schema.graphql
    python -m server accounts create-admin EMAIL   the first admin (password prompted, or one line on stdin)
    python -m server crowd simulate [--backfill-days N] [--once]   simulated sensors for every area
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import os
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import uvicorn

from server.api.schema import schema_sdl
from server.asgi import create_app
from server.content.loader import load_content
from server.content.validate import ContentError
from server.domain import freshness
from server.domain.accounts import service as accounts
from server.domain.crowd import feeder
from server.domain.crowd.live import Publisher
from server.domain.errors import Invalid
from server.observability.logs import configure_logging
from server.observability.startup import MongoUnavailable, problems, wait_for_mongo
from server.services import embedded, mongo
from server.services import redis as redis_service
from server.services.public_cache import PublicCache
from server.settings import Settings, SettingsError
from server.worker import run_worker

log = logging.getLogger("shangquan")


async def _simulate(settings: Settings, backfill_days: int, interval: float, once: bool) -> int:
    client = mongo.connect(settings.mongodb_url)
    redis_client = redis_service.connect(settings.redis_url)
    try:
        db = client[settings.mongodb_db]
        if backfill_days:
            written = await feeder.backfill(db, backfill_days, datetime.now(UTC))
            print(f"backfilled {written} readings over {backfill_days} days")
        if once:
            sent = await feeder.feed_once(db, Publisher(redis_client), settings, datetime.now(UTC))
            print(f"sent {sent} live readings")
            return 0
        print(f"simulating every area every {interval:g} s (Ctrl-C stops)", flush=True)
        await feeder.run(db, redis_client, settings, interval, asyncio.Event())
        return 0
    finally:
        await redis_client.aclose()
        await client.close()


async def _after_start(server: uvicorn.Server, stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` once the web app has started (it creates indexes and loads the content first)."""
    while not server.started:
        if stop.is_set():
            work.close()
            return
        await asyncio.sleep(0.2)
    await work


async def _demo_feed(settings: Settings, stop: asyncio.Event) -> None:
    """Single-machine mode has no real sensors: feed simulated ones, with a month of history at first start."""
    client = mongo.connect(settings.mongodb_url)
    redis_client = redis_service.connect(settings.redis_url)
    try:
        db = client[settings.mongodb_db]
        await feeder.feed_once(db, Publisher(redis_client), settings, datetime.now(UTC))  # live levels right away
        if await db.crowd_hourly.count_documents({}) < 1000:
            log.info("writing 28 days of simulated crowd history for the forecasts (first start only)")
            await feeder.backfill(db, 28, datetime.now(UTC))
        await feeder.run(db, redis_client, settings, 15.0, stop)
    finally:
        await redis_client.aclose()
        await client.close()


def _with_services(settings: Settings, *, redis: bool = True) -> tuple[Settings, list[embedded.ChildService]]:
    children = []
    if not settings.mongodb_url:
        children.append(embedded.start_mongo(settings.var_dir))
        settings = dataclasses.replace(settings, mongodb_url=children[-1].url)
    if redis and not settings.redis_url:
        children.append(embedded.start_redis(settings.var_dir))
        settings = dataclasses.replace(settings, redis_url=children[-1].url)
    return settings, children


async def _serve(settings: Settings) -> None:
    app = create_app(settings)
    await wait_for_mongo(settings.mongodb_url)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", lifespan="on",
                            log_config=None, access_log=False)
    server = uvicorn.Server(config)
    stop_worker = asyncio.Event()
    worker = asyncio.create_task(_after_start(server, stop_worker, run_worker(settings, settings.mongodb_url,
                                                                                 settings.redis_url, stop_worker)))
    demo = (asyncio.create_task(_after_start(server, stop_worker, _demo_feed(settings, stop_worker)))
            if settings.crowd_simulator else None)
    print(f"商圈 Shangquan is running at http://{settings.host}:{settings.port}  (Ctrl-C stops it)", flush=True)
    try:
        await server.serve()
    finally:
        stop_worker.set()
        await worker
        if demo is not None:
            await demo


async def _load(settings: Settings) -> int:
    client = mongo.connect(settings.mongodb_url)
    try:
        db = client[settings.mongodb_db]
        await mongo.ensure_indexes(db, settings.crowd_retention_days)
        report = await load_content(db, settings.content_dir)
    except ContentError as exc:
        print(f"content rejected, nothing written: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    if report.changed and settings.redis_url:
        # Running web processes answer from the public cache: outdate all of it.
        cache_client = redis_service.connect(settings.redis_url, decode_responses=False)
        try:
            cache = PublicCache(cache_client, settings.mongodb_db,
                                max_entry_bytes=settings.public_cache_max_entry_bytes)
            if not await cache.bump([freshness.EVERYTHING]):
                print("warning: Redis did not answer; cached pages stay up to a minute old", file=sys.stderr)
        finally:
            await cache_client.aclose()
    print(f"content loaded ({report.changed} changes): {report.summary()}")
    return 0


async def _create_admin(settings: Settings, email: str) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("Password for the new admin: ")
        if getpass.getpass("Once more: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    client = mongo.connect(settings.mongodb_url)
    try:
        db = client[settings.mongodb_db]
        await mongo.ensure_indexes(db, settings.crowd_retention_days)
        account = await accounts.create_admin(db, email, password)
    except Invalid as exc:
        print(f"not created: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    print(f"admin {account.email} created")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="商圈 Shangquan")
    sub = parser.add_subparsers(dest="command")
    content = sub.add_parser("content", help="manage seed content")
    content.add_argument("action", choices=["load"])
    crowd_cmd = sub.add_parser("crowd", help="simulated crowd sensors")
    crowd_cmd.add_argument("action", choices=["simulate"])
    crowd_cmd.add_argument("--backfill-days", type=int, default=0, help="write this many days of hourly history first")
    crowd_cmd.add_argument("--interval", type=float, default=15.0, help="seconds between live rounds")
    crowd_cmd.add_argument("--once", action="store_true", help="one live round, then exit")
    sub.add_parser("schema", help="print the GraphQL schema (SDL); graphql/schema.graphql is this output")
    accounts_cmd = sub.add_parser("accounts", help="manage accounts")
    accounts_cmd.add_argument("action", choices=["create-admin"])
    accounts_cmd.add_argument("email")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(schema_sdl(), end="")
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json=settings.log_json)
    if issues := problems(settings):
        for issue in issues:
            print(f"configuration error: {issue}", file=sys.stderr)
        return 2
    if args.command == "crowd" and not (settings.mongodb_url and settings.redis_url):
        print("point MONGODB_URL and REDIS_URL at the app's servers (python -m server already simulates "
              "crowds in single-machine mode)", file=sys.stderr)
        return 2
    embedded_mongo = not settings.mongodb_url
    settings, children = _with_services(settings, redis=args.command is None)
    if embedded_mongo and "CROWD_SIMULATOR" not in os.environ:
        settings = dataclasses.replace(settings, crowd_simulator=True)  # a demo needs moving numbers
    try:
        if args.command == "content":
            return asyncio.run(_load(settings))
        if args.command == "accounts":
            return asyncio.run(_create_admin(settings, args.email))
        if args.command == "crowd":
            return asyncio.run(_simulate(settings, args.backfill_days, args.interval, args.once))
        asyncio.run(_serve(settings))
        return 0
    except KeyboardInterrupt:
        return 0
    except MongoUnavailable as exc:
        print(f"startup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        for child in reversed(children):
            child.stop()


if __name__ == "__main__":
    raise SystemExit(main())
