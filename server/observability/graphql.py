"""A schema extension that tells the access log and metrics which GraphQL operation a request ran.

The access middleware never reads a POST body; this extension, running inside the operation, puts the
operation name (given, or the document's only operation) on the request's `scope["state"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from server.observability.middleware import STATE_OPERATION


class OperationNameExtension(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        request = context.get("request") if isinstance(context, dict) else getattr(context, "request", None)
        scope = getattr(request, "scope", None)
        if not isinstance(scope, dict) or scope.get("type") != "http":
            return
        try:
            name = self.execution_context.operation_name
        except Exception:  # an unparsable document has no operation
            return
        if name:
            scope.setdefault("state", {})[STATE_OPERATION] = name
