"""create_app(settings) → the Starlette application; clients live in the lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from pymongo.monitoring import CommandListener
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from server.api.budget import CostBudget
from server.api.cached_reads import CacheBinding, CachedReads
from server.api.crowd.hub import CrowdHub
from server.api.inbox.hub import InboxHub
from server.api.limits import limits_rule
from server.api.live.admission import Admission
from server.api.live.feeds import Multiplexer
from server.api.live.hubs import LiveHubs
from server.api.live.transport import Live, LiveSocketRoute, RawSendMiddleware, SocketCounts
from server.api.memo import ENTITY_MEMO_ENTRIES, VersionedMemo
from server.api.push.progress_hub import ProgressHub
from server.api.schema import build_schema
from server.api.view import GraphQLView
from server.content.loader import load_content
from server.domain import freshness
from server.domain.crowd.live import Publisher
from server.domain.merchants import postings
from server.domain.merchants import repository as merchant_repository
from server.observability.logs import configure_logging
from server.observability.metrics import MongoMetrics, metrics_route
from server.observability.middleware import AccessLogMiddleware
from server.observability.startup import problems
from server.plumbing.auth import session_policy
from server.plumbing.etag import ETagMiddleware
from server.plumbing.headers import SecurityHeadersMiddleware
from server.plumbing.ratelimit import Limiter, RateLimitMiddleware
from server.plumbing.request_id import RequestIdMiddleware
from server.services import embedded, mongo, public_cache, redis
from server.services.availability import MONGO_DOWN, REDIS_DOWN, ServiceUnavailable
from server.settings import Settings, SettingsError
from server.web import health
from server.web.admin.routes import admin_routes
from server.web.explorer import ExplorerGate, explorer_routes
from server.web.images import image_routes
from server.web.ingest import ingest_crowd
from server.web.push_clicks import push_clicked
from server.web.pwa import pwa_routes

log = logging.getLogger("shangquan")


def create_app(
    settings: Settings | None = None, *, load_content_on_start: bool = True,
    mongo_listeners: list[CommandListener] | None = None,
) -> Starlette:
    """mongo_listeners observe the app's own MongoDB client (tests count its commands)."""
    settings = settings or Settings.from_env()
    schema = build_schema(settings)
    # Charged after validation, with the cost the limits rule computed (server/api/budget.py).
    schema.extensions = (*schema.extensions, CostBudget)
    limits = limits_rule(settings.max_depth, settings.max_aliases, settings.max_cost)
    # Strawberry's own GraphiQL loads from a CDN: the explorer is ours (server/web/explorer).
    graphql = GraphQLView(schema, graphql_ide=None, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                          connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            mongo_url, redis_url = settings.mongodb_url, settings.redis_url
            # Without URLs the app brings its own servers, so `uvicorn server.asgi:app` works alone too.
            if not mongo_url:
                child = embedded.start_mongo(settings.var_dir)
                stack.callback(child.stop)
                mongo_url = child.url
            if not redis_url:
                redis_child = embedded.start_redis(settings.var_dir)
                stack.callback(redis_child.stop)
                redis_url = redis_child.url
            client = mongo.connect(mongo_url, listeners=[*(mongo_listeners or []), MongoMetrics()],
                                   timeout_ms=settings.mongodb_timeout_ms)
            stack.push_async_callback(client.close)
            redis_client = redis.connect(redis_url)
            stack.push_async_callback(redis_client.aclose)
            # Cached bodies are bytes. Every call of the cache has its own 3 s deadline (public_cache.CALL_TIMEOUT), so
            # its client needs no socket timeout, which cost each hit a task and two timers in redis-py. Any new call
            # on this client must carry a deadline of its own: nothing else cuts a hung Redis.
            cache_client = redis.connect(redis_url, decode_responses=False, socket_timeout=None)
            stack.push_async_callback(cache_client.aclose)
            cache = public_cache.PublicCache(cache_client, settings.mongodb_db, enabled=settings.public_cache,
                                             max_entry_bytes=settings.public_cache_max_entry_bytes)
            db = client[settings.mongodb_db]
            await mongo.ensure_indexes(db, settings.crowd_retention_days)
            if load_content_on_start:
                report = await load_content(db, settings.content_dir)
                log.info("content: %s", report.summary())
                if report.changed:
                    await cache.bump([freshness.EVERYTHING])
            if settled := await postings.settle_pending(db, partial(merchant_repository.merchant_doc, db)):
                log.warning("postings: settled %d merchants a failed write had left", settled)
            app.state.public_cache = cache
            app.state.memo = VersionedMemo()
            app.state.entity_memo = VersionedMemo(ENTITY_MEMO_ENTRIES)
            app.state.settings, app.state.db, app.state.redis = settings, db, redis_client
            app.state.limiter = Limiter(redis_client, settings.rate_limit_window_seconds)
            app.state.session_policy = await session_policy(db, settings)
            app.state.crowd_publisher = Publisher(redis_client)
            stack.push_async_callback(app.state.crowd_publisher.close)
            hubs = LiveHubs(crowd=CrowdHub(redis_client), inbox=InboxHub(redis_client, db),
                            progress=ProgressHub(redis_client, db))
            for hub in (hubs.crowd, hubs.inbox, hubs.progress):
                await hub.start()
                stack.push_async_callback(hub.stop)
            multiplexer = Multiplexer(schema, settings.live_state_interval_ms / 1000)
            stack.push_async_callback(multiplexer.stop)
            app.state.crowd_hub, app.state.inbox_hub, app.state.progress_hub = hubs.crowd, hubs.inbox, hubs.progress
            graphql.live = Live(settings, Admission(schema._schema, (limits,), settings.max_tokens), multiplexer,
                                  hubs, SocketCounts(settings.ws_max_per_address))
            # Schema, dictionaries and caches live for the whole process: keep them out of every
            # later garbage collection (full collections cost ~90 ms each under load).
            gc.collect()
            gc.freeze()
            yield

    routes = [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        metrics_route(settings.metrics_token),
        Route("/ingest/crowd", ingest_crowd, methods=["POST"]),
        Route("/push/clicked", push_clicked, methods=["POST"]),
        Route("/graphql", ExplorerGate(CachedReads(ETagMiddleware(graphql)), enabled=settings.graphql_ide),
              methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *admin_routes(settings),
        *explorer_routes(schema.as_str()),
        *image_routes(),
        *pwa_routes(settings),  # last: it ends with the shell's catch-all for unknown paths
    ]
    # A route that needs MongoDB or Redis while it is down answers 503 with Retry-After, not 500.
    unavailable: dict[Any, Any] = {error: health.service_unavailable
                                   for error in (*MONGO_DOWN, *REDIS_DOWN, ServiceUnavailable)}
    return Starlette(debug=settings.debug, routes=routes, lifespan=lifespan, exception_handlers=unavailable,
                     # The security headers outermost for HTTP: 404s, 429s and 503s carry them too (only the bare 500
                     # of Starlette's own error middleware, which sits outside every user middleware, does not).
                     # RawSendMiddleware, before them, only notes a WebSocket's own send (server/api/live);
                     # LiveSocketRoute, after them, hands a /graphql WebSocket to the view past the router.
                     middleware=[Middleware(RawSendMiddleware), Middleware(SecurityHeadersMiddleware),
                                 Middleware(RequestIdMiddleware), Middleware(AccessLogMiddleware),
                                 Middleware(RateLimitMiddleware), Middleware(CacheBinding),
                                 Middleware(LiveSocketRoute, socket_app=graphql, path="/graphql")])


def __getattr__(name: str) -> Starlette:
    # `uvicorn server.asgi:app` builds the app on first access, from the environment.
    if name == "app":
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            raise SystemExit(f"configuration error: {exc}") from None  # one line, no traceback
        configure_logging(settings.log_level, json=settings.log_json)
        if issues := problems(settings):
            raise SystemExit("configuration error: " + "; ".join(issues))
        return create_app(settings)
    raise AttributeError(name)
