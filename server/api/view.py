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

# GraphQL over HTTP (the current spec): clients that ask for this media type get it back, with
# HTTP status codes that say whether the request was executed at all. application/json keeps the
# legacy behaviour (200 for every GraphQL answer) for clients that predate the spec.
GRAPHQL_RESPONSE = "application/graphql-response+json"


def _quality(accept: str) -> tuple[float, float]:
    """q of application/graphql-response+json (named only) and of application/json (or a wildcard)."""
    ours, json_q = 0.0, 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE:
            ours = max(ours, q)
        elif media in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, q)
    return ours, json_q


def wants_graphql_response(accept: str) -> bool:
    """True when Accept ranks the spec's media type at least as high as application/json."""
    ours, json_q = _quality(accept)
    return ours > 0 and ours >= json_q


class GraphQLView(GraphQL[Context, None]):
    # Subscriptions join shared feeds (one execution per distinct subscription, server/api/live/).
    graphql_transport_ws_handler_class = LiveTransportHandler
    live: Live | None = None  # set in the app's lifespan
    def should_render_graphql_ide(self, request: Any) -> bool:
        # The explorer is answered in front of this view (server/web/explorer): here a GET without
        # `query` is a persisted query, whatever its Accept header says.
        return False

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
            memo=getattr(state, "memo", None), entity_memo=getattr(state, "entity_memo", None),
            tag_versions=request.scope.get("state", {}).get("tag_versions"),
            open_turns=request.scope.get("state", {}).get("open_turns"),
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        request_id = current_request_id()
        sub_response = request.state.sub_response
        if request.method == "GET" and not result.errors and "authorization" not in request.headers:
            # Public reads may be stored but are revalidated every time (ETag → 304): a withdrawn offer
            # disappears on the next request, and an unchanged answer costs a weak network almost nothing.
            # An answer for a bearer token (campaign stats, a merchant's own data) is never stored.
            sub_response.headers["cache-control"] = "public, no-cache"
            sub_response.headers["vary"] = "Accept, Accept-Language"
        else:
            sub_response.headers["cache-control"] = "no-store"
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [format_error(e, request_id) for e in result.errors]
            codes = [e["extensions"]["code"] for e in out["errors"]]
            count_graphql_errors(codes)
            _status_for(sub_response, out["errors"], codes)
        if wants_graphql_response(request.headers.get("accept", "")):
            sub_response.media_type = GRAPHQL_RESPONSE  # read by create_response
            # A request error (the document did not parse or validate, variables did not coerce, a limit
            # refused it): nothing was executed, so the spec wants 4xx and no `data` entry at all.
            # Field errors carry a path; those answers stay 200 with their partial data.
            if result.data is None and result.errors and all(e.path is None for e in result.errors):
                del out["data"]
                if sub_response.status_code is None:
                    sub_response.status_code = 400
        if result.extensions:
            out["extensions"] = result.extensions
        return out  # type: ignore[return-value]

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
        return response


def _status_for(response: Response, errors: list[dict[str, Any]], codes: list[str]) -> None:
    """Over budget → 429, a data service down → 503, both with Retry-After; other errors stay 200."""
    for code, status in ((RATE_LIMITED, 429), (SERVICE_UNAVAILABLE, 503)):
        if code in codes:
            wait = max(int(e["extensions"].get("retryAfter", 1)) for e in errors if e["extensions"]["code"] == code)
            response.status_code = status
            response.headers["retry-after"] = str(wait)
            return
