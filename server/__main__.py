"""Single-machine mode and management commands: `shangquan` (the console script) or `python -m server`.

    shangquan                                  embedded MongoDB + Redis (unless MONGODB_URL / REDIS_URL), web, worker
    shangquan content load                     validate content/ and write what changed
    shangquan schema                           print the GraphQL schema, as checked in at graphql/schema.graphql
    shangquan accounts create-admin EMAIL      the first admin (password prompted, or one line on stdin)
    shangquan crowd simulate [--backfill-days N] [--once]   simulated sensors for every area

The heavy parts (the app, the schema, the drivers) are imported by the command that needs them, so `--help`,
a bad argument or a data folder that cannot be used answer at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.observability.console import Progress, banner, console_wanted
from server.observability.logs import configure_logging
from server.services import embedded, instance
from server.services.supervisor import Supervisor
from server.settings import Settings, SettingsError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("shangquan")
HISTORY_DAYS = 28


def command_name() -> str:
    """How the user called us, for the command the banner suggests: `shangquan` when that is on PATH,
    else the path they typed (`.venv/bin/shangquan`), else `<python> -m server`."""
    called = Path(sys.argv[0])
    if called.name == "shangquan":
        on_path = shutil.which("shangquan")
        if on_path and Path(on_path).resolve() == called.resolve():
            return "shangquan"
        relative = os.path.relpath(called.resolve())
        return shlex.quote(relative if not relative.startswith("..") else str(called.resolve()))
    python = os.path.relpath(sys.executable)
    return f"{shlex.quote(python if not python.startswith('..') else sys.executable)} -m server"


async def _simulate(settings: Settings, backfill_days: int, interval: float, once: bool) -> int:
    from server.domain.crowd import feeder
    from server.domain.crowd.live import Publisher
    from server.services import mongo
    from server.services import redis as redis_service

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
    """Run `work` once the web app has started."""
    while not server.started:
        if stop.is_set():
            work.close()
            return
        await asyncio.sleep(0.2)
    await work


async def _demo_feed(settings: Settings, stop: asyncio.Event) -> None:
    """Single-machine mode has no real sensors: feed simulated ones (the history was written before start)."""
    from server.domain.crowd import feeder
    from server.domain.crowd.live import Publisher
    from server.services import mongo
    from server.services import redis as redis_service

    client = mongo.connect(settings.mongodb_url)
    redis_client = redis_service.connect(settings.redis_url)
    try:
        db = client[settings.mongodb_db]
        await feeder.feed_once(db, Publisher(redis_client), settings, datetime.now(UTC))  # live levels right away
        await feeder.run(db, redis_client, settings, 15.0, stop)
    finally:
        await redis_client.aclose()
        await client.close()


async def _first_run_work(settings: Settings, console: bool) -> bool:
    """Content, and a month of simulated crowd history on a first start, each with a progress bar on a
    terminal and one line when done; returns whether an admin exists yet."""
    from server.content.loader import load_content
    from server.domain.accounts import service as accounts
    from server.domain.crowd import feeder
    from server.domain.districts import repository as districts
    from server.services import mongo

    client = mongo.connect(settings.mongodb_url)
    try:
        db = client[settings.mongodb_db]
        await mongo.ensure_indexes(db, settings.crowd_retention_days)
        first = not await districts.any_district(db)
        with Progress("loading the content" if first else "checking the content", shown=console and first) as bar:
            report = await load_content(db, settings.content_dir, progress=bar.step)
        log.info("content: %s", report.summary() if report.changed else "up to date")
        if settings.crowd_simulator and await feeder.needs_history(db):
            with Progress(f"simulating {HISTORY_DAYS} days of crowd history", shown=console) as bar:
                await feeder.backfill(db, HISTORY_DAYS, datetime.now(UTC), progress=bar.step)
        return await accounts.admin_exists(db)
    finally:
        await client.close()


async def _serve(settings: Settings, console: bool) -> None:
    import uvicorn

    from server.api.live.protocol import UVICORN_WS
    from server.asgi import create_app
    from server.observability.startup import wait_for_mongo
    from server.worker import run_worker

    await wait_for_mongo(settings.mongodb_url)
    has_admin = await _first_run_work(settings, console)
    app = create_app(settings, load_content_on_start=False)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", lifespan="on",
                            log_config=None, access_log=False, **UVICORN_WS)
    server = uvicorn.Server(config)
    stop_worker, worker_ready = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(_after_start(server, stop_worker, run_worker(
        settings, settings.mongodb_url, settings.redis_url, stop_worker, worker_ready)))
    demo = (asyncio.create_task(_after_start(server, stop_worker, _demo_feed(settings, stop_worker)))
            if settings.crowd_simulator else None)

    async def announce() -> None:
        # last, so the banner stays on screen: after the worker's start-up lines
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker_ready.wait(), timeout=30)
        print(banner(settings.host, settings.port, None if has_admin else command_name(), fancy=console),
              flush=True)

    shown = asyncio.create_task(_after_start(server, stop_worker, announce()))
    try:
        await server.serve()
    finally:
        stop_worker.set()
        await worker
        await shown
        if demo is not None:
            await demo


async def _load(settings: Settings) -> int:
    from server.content.loader import load_content
    from server.content.validate import ContentError
    from server.domain import freshness
    from server.services import mongo
    from server.services import redis as redis_service
    from server.services.public_cache import PublicCache

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
    from server.domain.accounts import service as accounts
    from server.domain.errors import Invalid
    from server.services import mongo

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
        from server.domain.messages import translate

        # the catalog's English sentences, as on the back office's forms ("Use at least 10 characters.")
        reasons = " ".join(f"{field}: {translate(key, 'en')}" for field, key in exc.fields.items())
        print(f"not created: {reasons}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    print(f"admin {account.email} created")
    return 0


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
        held = None if supervise else instance.holder(settings.var_dir)
        if held and held.get("url") and held.get("mongodb_url"):  # the app runs: use its MongoDB
            return dataclasses.replace(settings, mongodb_url=settings.mongodb_url or str(held["mongodb_url"]))
        instance.check_var_dir(settings.var_dir)
        self.lock = instance.acquire(settings.var_dir, **(
            {"url": f"http://{settings.host}:{settings.port}"} if supervise else {"command": " ".join(sys.argv[1:])}))
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


def parser() -> argparse.ArgumentParser:
    prog = "python -m server" if Path(sys.argv[0]).name == "__main__.py" else "shangquan"
    top = argparse.ArgumentParser(
        prog=prog, description="商圈 Shangquan. Without a command: single-machine mode (embedded MongoDB and "
        "Redis unless MONGODB_URL and REDIS_URL are set, the web app and the worker; Ctrl-C stops it).")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    content = sub.add_parser("content", help="seed content", description="Seed content (SHANGQUAN_CONTENT_DIR).")
    content_sub = content.add_subparsers(dest="action", metavar="ACTION", required=True)
    content_sub.add_parser("load", help="validate content/ and write only what changed (idempotent)",
                           description="Validate content/ and write only what changed; a malformed file is "
                           "rejected whole, with the file, record and field named.")
    sub.add_parser("schema", help="print the GraphQL schema (SDL); graphql/schema.graphql is this output",
                   description="Print the GraphQL schema (SDL); graphql/schema.graphql is this output.")
    accounts = sub.add_parser("accounts", help="back-office accounts", description="Back-office accounts.")
    accounts_sub = accounts.add_subparsers(dest="action", metavar="ACTION", required=True)
    create_admin = accounts_sub.add_parser(
        "create-admin", help="create an admin (the first one starts the back office)",
        description="Create an admin. The password is prompted for on a terminal, else read as one line from "
        "standard input.")
    create_admin.add_argument("email", help="the admin's email address, used to sign in")
    crowd = sub.add_parser("crowd", help="simulated crowd sensors",
                           description="Simulated crowd sensors (needs MONGODB_URL and REDIS_URL; single-machine "
                           "mode simulates them already).")
    crowd_sub = crowd.add_subparsers(dest="action", metavar="ACTION", required=True)
    simulate = crowd_sub.add_parser("simulate", help="feed every area with simulated readings",
                                    description="Feed every area with simulated readings.")
    simulate.add_argument("--backfill-days", type=int, default=0, metavar="N",
                          help="write N days of hourly history first")
    simulate.add_argument("--interval", type=float, default=15.0, metavar="SECONDS",
                          help="seconds between live rounds (default 15)")
    simulate.add_argument("--once", action="store_true", help="one live round, then exit")
    return top


def _unreachable(exc: Exception, settings: Settings) -> str | None:
    """One line for a management command whose MongoDB or Redis did not answer, instead of a driver's traceback."""
    from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from server.observability.startup import mongo_address

    if isinstance(exc, ServerSelectionTimeoutError | ConnectionFailure):
        return (f"MongoDB at {mongo_address(settings.mongodb_url)} did not answer: is it running, and is MONGODB_URL "
                "right? Nothing was written.")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "Redis did not answer: is it running, and is REDIS_URL right?"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a bad command or argument: usage and status 2 (argparse)
    if args.command == "schema":
        from server.api.schema import schema_sdl

        print(schema_sdl(), end="")
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    console = args.command is None and console_wanted(sys.stdout)
    configure_logging(settings.log_level, json=settings.log_json, console=console)
    from server.observability.startup import MongoUnavailable, problems

    if issues := problems(settings):
        for issue in issues:
            print(f"configuration error: {issue}", file=sys.stderr)
        return 2
    if args.command in (None, "content") and not settings.content_dir.is_dir():
        print(f"configuration error: SHANGQUAN_CONTENT_DIR {settings.content_dir} is not a folder: point it at the "
              "content (the repository's content/)", file=sys.stderr)
        return 2
    if args.command == "crowd" and not (settings.mongodb_url and settings.redis_url):
        print("point MONGODB_URL and REDIS_URL at the app's servers (single-machine mode already simulates "
              "crowds)", file=sys.stderr)
        return 2
    embedded_mongo = not settings.mongodb_url
    services = Embedded()
    started = time.monotonic()
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
        log.debug("embedded services up in %.1f s", time.monotonic() - started)
        asyncio.run(_serve(settings, console))
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
    except Exception as exc:
        line = _unreachable(exc, settings)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1
    finally:
        services.stop()


if __name__ == "__main__":
    raise SystemExit(main())
