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
from server.domain.accounts import service as accounts
from server.domain.crowd import feeder
from server.domain.crowd.live import Publisher
from server.domain.errors import Invalid
from server.observability.logs import configure_logging
from server.observability.startup import MongoUnavailable, problems, wait_for_mongo
from server.services import embedded, instance, mongo
from server.services import redis as redis_service
from server.services.supervisor import Supervisor
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


class Embedded:
    """The embedded services a command needs, on a data folder this process holds the lock of."""

    def __init__(self) -> None:
        self.lock: instance.InstanceLock | None = None
        self.children: list[embedded.ChildService] = []
        self.supervisor: Supervisor | None = None

    def start(self, settings: Settings, *, redis: bool, supervise: bool) -> Settings:
        """Settings pointing at the services (started here unless their URL is set). A management command
        while the app runs on this folder uses the app's MongoDB instead of starting a second one."""
        if settings.mongodb_url and (settings.redis_url or not redis):
            return settings  # production mode: nothing started, nothing supervised
        if not supervise and (held := instance.holder(settings.var_dir)) and held.get("mongodb_url"):
            return dataclasses.replace(settings, mongodb_url=settings.mongodb_url or str(held["mongodb_url"]))
        instance.check_var_dir(settings.var_dir)
        self.lock = instance.acquire(settings.var_dir, url=f"http://{settings.host}:{settings.port}")
        if not settings.mongodb_url:
            self.children.append(embedded.mongo_service(settings.var_dir))
        if redis and not settings.redis_url:
            self.children.append(embedded.redis_service(settings.var_dir,
                                                        persist=settings.embedded_redis_appendonly))
        for child in self.children:
            child.start()
            if child.name == "mongo":
                settings = dataclasses.replace(settings, mongodb_url=child.url)
            else:
                settings = dataclasses.replace(settings, redis_url=child.url)
        self.lock.update(mongodb_url=settings.mongodb_url, redis_url=settings.redis_url,
                         children={c.name: c.pid for c in self.children})
        if supervise and self.children:
            self.supervisor = Supervisor(self.children)
            self.supervisor.start()
        return settings

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        for child in reversed(self.children):
            child.stop()
        if self.lock is not None:
            self.lock.release()


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
    services = Embedded()
    try:
        settings = services.start(settings, redis=args.command is None, supervise=args.command is None)
        if embedded_mongo and "CROWD_SIMULATOR" not in os.environ:
            settings = dataclasses.replace(settings, crowd_simulator=True)  # a demo needs moving numbers
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
    except instance.InstanceError as exc:
        print(exc, file=sys.stderr)
        return 1
    except embedded.EmbeddedStartError as exc:
        print(f"startup failed: {exc}", file=sys.stderr)
        return 1
    except MongoUnavailable as exc:
        print(f"startup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        services.stop()


if __name__ == "__main__":
    raise SystemExit(main())
