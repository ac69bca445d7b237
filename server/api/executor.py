"""The executor Strawberry runs operations with, minus a leak in graphql-core 3.3 subscriptions.

graphql-core builds each subscription event's executor as a shallow copy of the subscription's, so every
event shares one memo of collected sub-fields, keyed by the identity of field lists made afresh per event:
it grows by a few entries per event for as long as the subscription lives (bench/load.py saw the web
process grow 16 % in ten minutes of crowd updates).  Each event gets a memo of its own, freed with it.
"""

from __future__ import annotations

from typing import Any

from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class EventScopedExecutor(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor
