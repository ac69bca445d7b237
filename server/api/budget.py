"""Per-client GraphQL cost budget: each operation is charged the cost the limits rule computed for it.

The charge comes after validation (a document that fails it runs nothing and costs nothing) and before
execution, for queries, mutations and subscriptions alike. A client is the account of a valid API token,
else its address (server/plumbing/ratelimit.py). Over budget, the operation does not run: the answer is a
RATE_LIMITED error with `retryAfter`, which the view sends as HTTP 429 with a Retry-After header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import HTTPConnection
from strawberry.extensions import SchemaExtension

from graphql import DocumentNode
from server.api.context import Context
from server.api.errors import RATE_LIMITED, ApiError
from server.api.limits import operation_cost
from server.plumbing.auth import actor_of
from server.plumbing.ratelimit import Limiter, client_key


async def client_of(connection: HTTPConnection) -> str:
    if connection.headers.get("authorization", "").lower().startswith("bearer "):
        actor = await actor_of(connection)  # resolved once per request; mutations reuse it
        if actor.account_id:
            return f"account:{actor.account_id}"
    return client_key(connection)


async def charge(connection: HTTPConnection, limiter: Limiter | None, budget: int, document: DocumentNode,
                 operation_name: str | None) -> None:
    """Charge the operation's cost to the connection's client; raises RATE_LIMITED when over the budget."""
    if limiter is None or budget <= 0:
        return
    cost = max(1, operation_cost(document, operation_name))
    wait = await limiter.charge("gql", await client_of(connection), cost, budget)
    if wait:
        raise ApiError(RATE_LIMITED, f"over the GraphQL budget of {budget} points per "
                       f"{limiter.window} s; try again in {wait} s", retryAfter=wait)


class CostBudget(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        context: Context = self.execution_context.context
        # A shared live feed runs without a connection: each of its subscribers was charged when it joined.
        connection = context.request
        document = self.execution_context.graphql_document
        if connection is not None and isinstance(document, DocumentNode):
            await charge(connection, context.limiter, context.settings.rate_limit_graphql_cost, document,
                         self.execution_context.operation_name)
        yield
