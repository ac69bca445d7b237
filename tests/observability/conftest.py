"""A small Starlette app wearing the observability pieces the way create_app will, and a captured log stream."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from strawberry.asgi import GraphQL

from server.observability.graphql import OperationNameExtension
from server.observability.logs import configure_logging
from server.observability.metrics import metrics_route
from server.observability.middleware import AccessLogMiddleware
from server.plumbing.request_id import RequestIdMiddleware

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
SQ_TOKEN = "sq_" + "T0kenSecretValue_abcdefghijklmnop1234567"
SQS_KEY = "sqs_" + "SensorKeySecret-abcdefghijklmnopq98765432"
PASSWORD = "hunter2-correct-horse"
COOKIE = "SessionCookieSecret.Signature99"
BEARER = "BearerSecretXYZ987654"
P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
AUTH = "tBHItJI5svbpez7KI4CCXg"
SECRETS = (SQ_TOKEN, SQS_KEY, PASSWORD, COOKIE, BEARER, P256DH, AUTH)

log = logging.getLogger("shangquan.test")


async def hello(request: Request) -> PlainTextResponse:
    log.info("hello from the handler", extra={"shop": "hqb-screen-doctor"})
    return PlainTextResponse("hello")


async def leaky(request: Request) -> JSONResponse:
    # Everything a careless handler might log: headers, a token, a key, a password, a cookie, push keys.
    log.info("headers %s", dict(request.headers))
    log.info("Authorization: Bearer %s", BEARER)
    log.warning("token %s rejected; sensor key %s unknown", SQ_TOKEN, SQS_KEY)
    log.info("login attempt password=%s cookie sq_session=%s", PASSWORD, COOKIE)
    log.info("subscription", extra={"subscription": {"endpoint": "https://push.example/x",
                                                     "keys": {"p256dh": P256DH, "auth": AUTH}},
                                    "password": PASSWORD, "headers": [("authorization", f"Bearer {BEARER}"),
                                                                      ("cookie", f"sq_session={COOKIE}")]})
    log.info("raw dict %s", {"password": PASSWORD, "p256dh": P256DH, "auth": AUTH})
    try:
        raise ValueError(f"bad token {SQ_TOKEN}")
    except ValueError:
        log.exception("failed with api_key=%s", SQS_KEY)
    return JSONResponse({"ok": True})


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("handler failed")


async def invite(request: Request) -> PlainTextResponse:
    return PlainTextResponse("invited")


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


def build_app(token: str = METRICS_TOKEN) -> Starlette:
    graphql = GraphQL(strawberry.Schema(Query, extensions=[OperationNameExtension]))
    routes = [
        Route("/hello", hello),
        Route("/leaky", leaky, methods=["GET", "POST"]),
        Route("/boom", boom),
        Route("/shops/{shop_id}", hello),
        Mount("/admin", routes=[Route("/invite/{token}", invite)]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        metrics_route(token),
    ]
    return Starlette(routes=routes, middleware=[Middleware(RequestIdMiddleware), Middleware(AccessLogMiddleware)])


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == "shangquan.access"]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        yield Captured(stream)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def client_for(app: Starlette, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 1234), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def local() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(build_app()) as client:
        yield client
