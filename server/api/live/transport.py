"""graphql-transport-ws as the PWA and `gql` speak it, with subscriptions served by shared feeds.

Strawberry's handler keeps the protocol (connection_init/ack, ping/pong, ids, close codes) and still runs
queries and mutations sent over a socket; a subscription is checked here (server/api/live/admission.py) and
joins its feed (server/api/live/feeds.py) instead of running on its own. Every frame of a socket goes through
its bounded outbox (server/api/live/outbox.py), in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import CompleteMessage, Message, SubscribeMessage

from graphql import GraphQLError
from server.api.budget import charge
from server.api.context import Context
from server.api.errors import ApiError, format_error
from server.api.live.admission import Admission
from server.api.live.feeds import Multiplexer, Subscriber
from server.api.live.hubs import LiveHubs
from server.api.live.outbox import Outbox
from server.api.live.protocol import LiveWebSocketProtocol
from server.plumbing.ratelimit import client_key
from server.settings import Settings

TOO_MANY_SOCKETS: Final = 1008  # policy violation: this address already holds its share of sockets
TOO_MANY_REASON: Final = "Too many open sockets from this address"
NO_SUBSCRIPTION: Final = 4408  # as graphql-transport-ws's connection-init timeout


class SocketCounts:
    """Open sockets per client address in this process."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.by_address: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        if self.cap and self.by_address[address] >= self.cap:
            return False
        self.by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


@dataclass(slots=True)
class Live:
    """The process's live machinery, made in the lifespan and handed to the view (GraphQLView.live)."""

    settings: Settings
    admission: Admission
    multiplexer: Multiplexer
    hubs: LiveHubs
    sockets: SocketCounts


RAW_SEND: Final = "shangquan.raw_send"


class RawSendMiddleware:
    """Outermost: keeps the server's own `send` of a WebSocket in its scope. Data frames of live feeds go
    straight to it, past the middleware wrappers that only watch accept and close (a few µs per frame and
    subscriber, at 5,000 subscribers); accept and close still take the usual way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself, as the other layers a WebSocket passes: a socket keeps no frame of this one.
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        return self.app(scope, receive, send)


class LiveSocketRoute:
    """Innermost: a WebSocket on the GraphQL path goes straight to the view, past Starlette's exception layer and
    router. Neither does anything for these sockets (the view answers its own errors with close codes), but each
    keeps a suspended frame for as long as the socket lives: five, ~2 KB of every idle subscriber."""

    def __init__(self, app: ASGIApp, socket_app: ASGIApp, path: str) -> None:
        self.app, self.socket_app, self.path = app, socket_app, path

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and scope["path"].removeprefix(scope.get("root_path", "")) == self.path:
            return self.socket_app(scope, receive, send)
        return self.app(scope, receive, send)


def _text_sender(send: Send) -> Callable[[str], Coroutine[Any, Any, None]]:
    async def send_text(text: str) -> None:
        await send({"type": "websocket.send", "text": text})
    return send_text


def _credentials(context: Context, socket: WebSocket) -> str | None:
    """The bearer token a subscription runs as (connection_init payload first, else the upgrade header)."""
    params = context.connection_params
    authorization = params.get("authorization") if isinstance(params, dict) else None
    if not isinstance(authorization, str):
        authorization = socket.headers.get("authorization")
    if isinstance(authorization, str) and authorization.lower().startswith("bearer "):
        return "Bearer " + authorization[7:].strip()
    return None


class LiveTransportHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        socket: WebSocket = self.websocket.ws  # type: ignore[attr-defined]
        self.socket = socket
        live = getattr(self.view, "live", None)
        if not isinstance(live, Live):
            raise RuntimeError("live subscriptions need the running app (GraphQLView.live is set in the lifespan)")
        self.live_state = live
        settings = self.live_state.settings
        raw_send = socket.scope.get(RAW_SEND)
        server = getattr(raw_send, "__self__", None)  # uvicorn's protocol object, whose method `send` is
        ours = server if isinstance(server, LiveWebSocketProtocol) else None
        self.outbox = Outbox(_text_sender(raw_send) if raw_send else socket.send_text, self._close,
                             limit=settings.live_send_queue, slow_seconds=settings.live_slow_close_seconds,
                             server=ours)
        self.subscribers: dict[str, Subscriber] = {}
        self.subscribed = False
        self.watchdog: asyncio.TimerHandle | None = None

    async def _close(self, code: int, reason: str) -> None:
        await self.socket.close(code=code, reason=reason)

    async def handle(self) -> None:
        live = self.live_state
        address = client_key(self.socket)
        if not live.sockets.admit(address):
            with contextlib.suppress(Exception):
                await self.socket.close(code=TOO_MANY_SOCKETS, reason=TOO_MANY_REASON)
            return
        # A timer, not a task: it is cancelled by the first subscription, so a subscribed socket keeps nothing of it.
        self.watchdog = asyncio.get_running_loop().call_later(live.settings.ws_init_timeout_seconds, self._idle)
        try:
            await super().handle()
        finally:
            self._disarm()
            live.sockets.release(address)
            await self.outbox.stop()

    def on_request_accepted(self) -> None:
        """Strawberry would start its own connection-init timeout task: the watchdog covers that case too."""

    def _disarm(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def _idle(self) -> None:
        """A socket that has not subscribed within the init timeout is closed: an idle one only costs."""
        self.watchdog = None
        if not self.subscribed:
            reason = "Subscription timeout" if self.connection_init_received else "Connection initialisation timeout"
            self.outbox.give_up(NO_SUBSCRIPTION, reason)

    async def send_message(self, message: Message) -> None:
        self.outbox.push(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    async def shutdown(self) -> None:
        for subscriber in list(self.subscribers.values()):
            self.live_state.multiplexer.leave(subscriber)
        self.subscribers.clear()
        await super().shutdown()

    async def handle_complete(self, message: CompleteMessage) -> None:
        subscriber = self.subscribers.pop(message["id"], None)
        if subscriber is not None:
            self.live_state.multiplexer.leave(subscriber)
            return
        await super().handle_complete(message)

    def _forget(self, operation_id: str) -> None:
        self.subscribers.pop(operation_id, None)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload: Any = message.get("payload")
        operation_id = message["id"]
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str) \
                or not isinstance(operation_id, str) \
                or not isinstance(payload.get("variables") or {}, dict) \
                or not isinstance(payload.get("operationName") or "", str):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        live = self.live_state
        checked = live.admission.check(payload["query"], payload.get("operationName"))
        if checked.root_field is None and not checked.errors:
            await super().handle_subscribe(message)  # a query or mutation over the socket: Strawberry runs it
            return
        if not self.connection_acknowledged:
            await self.socket.close(code=4401, reason="Unauthorized")
            return
        if operation_id in self.subscribers or operation_id in self.operations:
            await self.socket.close(code=4409, reason=f"Subscriber for {operation_id} already exists")
            return
        self.subscribed = True
        self._disarm()
        subscriber = Subscriber(self.outbox, operation_id, self._forget)
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.subscribers) + len(self.operations) >= limit:
            subscriber.error([self._format(GraphQLError("Subscription limit reached"))])
            return
        if checked.errors:
            subscriber.error([self._format(e) for e in checked.errors])
            return
        assert checked.document is not None and checked.root_field is not None
        try:
            await charge(self.socket, self.context.limiter, live.settings.rate_limit_graphql_cost,
                         checked.document, payload.get("operationName"))
        except ApiError as error:
            subscriber.error([self._format(error)])
            return
        variables: dict[str, Any] | None = payload.get("variables")
        context = self.context
        credentials = _credentials(context, self.socket)
        key = Multiplexer.key(payload["query"], payload.get("operationName"), variables, context.locale, credentials)
        self.subscribers[operation_id] = subscriber

        def feed_context() -> Context:
            # The feed outlives this socket, so it keeps nothing of it but what the key already says.
            return Context(db=context.db, redis=context.redis, settings=context.settings, locale=context.locale,
                           now=datetime.now(UTC), request_id="live", crowd_hub=live.hubs.crowd,
                           inbox_hub=live.hubs.inbox, progress_hub=live.hubs.progress,
                           connection_params={"authorization": credentials} if credentials else {})

        live.multiplexer.join(key, subscriber, Multiplexer.is_state(checked.root_field), feed_context, variables)

    def _format(self, error: GraphQLError) -> dict[str, Any]:
        return format_error(error, self.context.request_id)
