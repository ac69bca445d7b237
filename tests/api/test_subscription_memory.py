"""A long-lived subscription does not keep something of every event it delivered (graphql-core 3.3 did)."""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator

import strawberry
from graphql.execution.collect_fields import FieldDetails

from server.api.executor import EventScopedExecutor


@strawberry.type
class Level:
    area: str
    percent: int


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def levels(self, n: int) -> AsyncGenerator[Level, None]:
        for i in range(n):
            yield Level(area="dongmen", percent=i % 100)


def live_field_details() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is FieldDetails)  # isinstance would touch dead weak proxies


async def kept_after(schema: strawberry.Schema, events: int) -> int:
    """FieldDetails still alive after `events` events, while the subscription is still open."""
    stream = await schema.subscribe("subscription { levels(n: %d) { area percent } }" % (events + 1))
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    for _ in range(events):
        result = await anext(stream)
        assert result.errors is None
    count = live_field_details()
    await stream.aclose()
    return count


async def test_events_leave_nothing_behind_while_the_subscription_lives() -> None:
    fixed = strawberry.Schema(query=Query, subscription=Subscription, execution_context_class=EventScopedExecutor)
    assert await kept_after(fixed, 500) - await kept_after(fixed, 50) < 20
    # the stock executor keeps a few per event: the check above can fail
    stock = strawberry.Schema(query=Query, subscription=Subscription)
    assert await kept_after(stock, 500) - await kept_after(stock, 50) > 400
