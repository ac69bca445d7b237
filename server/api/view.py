"""The Starlette-facing GraphQL endpoint: context per request, errors coded and masked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from server.api.context import Context
from server.api.errors import format_error
from server.domain.i18n import negotiate
from server.web.request_id import current_request_id


class GraphQLView(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state = request.app.state
        return Context(
            db=state.db, redis=state.redis, settings=state.settings,
            locale=negotiate(request.headers.get("accept-language")), now=datetime.now(UTC),
            request_id=current_request_id(), request=request, response=response,
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        request_id = current_request_id()
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [format_error(e, request_id) for e in result.errors]
        if result.extensions:
            out["extensions"] = result.extensions
        return out  # type: ignore[return-value]
