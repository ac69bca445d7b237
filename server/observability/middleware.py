"""One access-log line and the request metrics for every HTTP request; the subscriber gauge for WebSockets.

Pure ASGI, placed just inside RequestIdMiddleware so the line carries the request id. It logs the path
only (a query string can hold persisted-query variables), with secret path parameters (an invitation
`{token}`) replaced, and labels metrics with the route template, never the raw path.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.observability import metrics
from server.observability.logs import REDACTED, secret_name

access_log = logging.getLogger("shangquan.access")
GRAPHQL_PATH = "/graphql"
STATE_OPERATION = "graphql_operation"  # scope["state"] key the GraphQL layer may fill in


def route_template(scope: Scope, root_path: str) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if route is None or not isinstance(path, str):
        return "unmatched"
    prefix = str(scope.get("root_path", ""))[len(root_path):]  # what Mounts matched on the way
    if isinstance(route, Mount):
        return prefix + "/{path}"
    return prefix + path


def logged_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        if secret_name(str(name)) and str(value):
            path = path.replace(str(value), REDACTED)
    return path


def get_operation(scope: Scope) -> str | None:
    """For a GET: operationName, else the persisted query's hash prefix. No body is read."""
    query = scope.get("query_string", b"")
    if not query:
        return None
    params = parse_qs(query.decode("latin-1"))
    name: str = (params.get("operationName") or [""])[0]
    if name:
        return name
    try:
        extensions: Any = json.loads((params.get("extensions") or ["{}"])[0])
        sha: object = extensions["persistedQuery"]["sha256Hash"]
    except (ValueError, KeyError, TypeError):
        return None
    return f"persisted:{sha[:12]}" if isinstance(sha, str) else None


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: a WebSocket, open for hours, keeps one frame of this layer, not two.
        if scope["type"] == "websocket":
            return self._websocket(scope, receive, send)
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500  # what the server answers when the app raises before starting a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            method, path = str(scope.get("method", "")), str(scope.get("path", ""))
            fields: dict[str, Any] = {"method": method, "path": logged_path(scope), "status": status,
                                      "duration_ms": round(seconds * 1000, 2)}
            graphql = path == GRAPHQL_PATH
            operation: str | None = None
            if graphql:
                state = scope.get("state")
                from_view = state.get(STATE_OPERATION) if isinstance(state, dict) else None
                operation = from_view or (get_operation(scope) if method == "GET" else None)
                fields["graphql_operation"] = operation or "graphql"
            metrics.observe_request(method, route_template(scope, root_path), status, seconds,
                                    operation, graphql=graphql)
            access_log.info("%s %s %s %.1f ms", method, fields["path"], status, fields["duration_ms"],
                            extra=fields)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        accepted = False
        close_code: int | None = None

        async def watch(message: Message) -> None:
            nonlocal accepted, close_code
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                metrics.subscriber_connected()
            elif message["type"] == "websocket.close":
                close_code = int(message.get("code", 1000))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if accepted:
                metrics.subscriber_disconnected()
            access_log.info("websocket %s closed after %.1f s", logged_path(scope), time.perf_counter() - start,
                            extra={"method": "WEBSOCKET", "path": logged_path(scope), "accepted": accepted,
                                   "close_code": close_code,
                                   "duration_ms": round((time.perf_counter() - start) * 1000, 2)})
