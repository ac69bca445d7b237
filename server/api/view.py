"""The Starlette-facing GraphQL endpoint: context per request, errors coded and masked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from server.api.context import Context
from server.api.errors import RATE_LIMITED, SERVICE_UNAVAILABLE, format_error
from server.api.live.transport import Live, LiveTransportHandler
from server.domain.i18n import negotiate
from server.observability.correlation import current_request_id
from server.observability.metrics import count_graphql_errors
from server.plumbing import persisted


class GraphQLView(GraphQL[Context, None]):
    # Subscriptions join shared feeds (one execution per distinct subscription, server/api/live/).
    graphql_transport_ws_handler_class = LiveTransportHandler
    live: Live | None = None  # set in the app's lifespan
    def should_render_graphql_ide(self, request: Any) -> bool:
        # Only in DEBUG, and never for a persisted-query GET (it has no `query` parameter either).
        return bool(self.graphql_ide) and "extensions" not in request.query_params and \
            super().should_render_graphql_ide(request)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter,
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            return data
        query, problem = persisted.resolve(data.query, data.extensions)
        if problem:
            raise HTTPException(400, problem)
        data.query = query
        return data

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state = request.app.state
        request.state.sub_response = response
        return Context(
            db=state.db, redis=state.redis, settings=state.settings,
            locale=negotiate(request.headers.get("accept-language")), now=datetime.now(UTC),
            request_id=current_request_id(), request=request, response=response,
            crowd_hub=state.crowd_hub, inbox_hub=state.inbox_hub, progress_hub=state.progress_hub,
            limiter=state.limiter,
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        request_id = current_request_id()
        sub_response = request.state.sub_response
        if request.method == "GET" and not result.errors and "authorization" not in request.headers:
            # Public reads may be stored but are revalidated every time (ETag → 304): a withdrawn offer
            # disappears on the next request, and an unchanged answer costs a weak network almost nothing.
            # An answer for a bearer token (campaign stats, a merchant's own data) is never stored.
            sub_response.headers["cache-control"] = "public, no-cache"
            sub_response.headers["vary"] = "Accept-Language"
        else:
            sub_response.headers["cache-control"] = "no-store"
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [format_error(e, request_id) for e in result.errors]
            codes = [e["extensions"]["code"] for e in out["errors"]]
            count_graphql_errors(codes)
            _status_for(sub_response, out["errors"], codes)
        if result.extensions:
            out["extensions"] = result.extensions
        return out  # type: ignore[return-value]


def _status_for(response: Response, errors: list[dict[str, Any]], codes: list[str]) -> None:
    """Over budget → 429, a data service down → 503, both with Retry-After; other errors stay 200."""
    for code, status in ((RATE_LIMITED, 429), (SERVICE_UNAVAILABLE, 503)):
        if code in codes:
            wait = max(int(e["extensions"].get("retryAfter", 1)) for e in errors if e["extensions"]["code"] == code)
            response.status_code = status
            response.headers["retry-after"] = str(wait)
            return
