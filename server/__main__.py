"""Single-machine mode and management commands.

    python -m server                 embedded MongoDB + Redis (unless MONGODB_URL / REDIS_URL), web and worker
    python -m server content load    validate content/ and write what changed
    python -m server schema          print the GraphQL schema, as checked in at graphql/schema.graphql
    python -m server accounts create-admin EMAIL   the first admin (password prompted, or one line on stdin)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import logging
import sys

import uvicorn

from server.api.schema import schema_sdl
from server.asgi import create_app
from server.content.loader import load_content
from server.content.validate import ContentError
from server.domain.accounts import service as accounts
from server.domain.errors import Invalid
from server.services import embedded, mongo
from server.settings import Settings, SettingsError
from server.worker import run_worker

log = logging.getLogger("shangquan")


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
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", lifespan="on")
    server = uvicorn.Server(config)
    stop_worker = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, settings.mongodb_url, settings.redis_url, stop_worker))
    print(f"商圈 Shangquan is running at http://{settings.host}:{settings.port}  (Ctrl-C stops it)", flush=True)
    try:
        await server.serve()
    finally:
        stop_worker.set()
        await worker


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
    sub.add_parser("schema", help="print the GraphQL schema (SDL); graphql/schema.graphql is this output")
    accounts_cmd = sub.add_parser("accounts", help="manage accounts")
    accounts_cmd.add_argument("action", choices=["create-admin"])
    accounts_cmd.add_argument("email")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(schema_sdl(), end="")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    settings, children = _with_services(settings, redis=args.command is None)
    try:
        if args.command == "content":
            return asyncio.run(_load(settings))
        if args.command == "accounts":
            return asyncio.run(_create_admin(settings, args.email))
        asyncio.run(_serve(settings))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            child.stop()


if __name__ == "__main__":
    raise SystemExit(main())
