"""What a subscribe message must pass before it joins a feed: parse, token limit, validation with the depth,
alias and cost limits, the client's cost budget. Done per subscriber (a refused one costs nothing after its
error frame); the parse and validation of a document text are remembered, so a thousand phones sending the
PWA's document pay for it once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from graphql.language import FieldNode
from graphql.validation import ASTValidationRule
from strawberry.schema.schema import validate_document

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    get_operation_ast,
    parse,
    specified_rules,
)

KEPT: Final = 512


@dataclass(frozen=True, slots=True)
class Checked:
    document: DocumentNode | None
    errors: list[GraphQLError]
    root_field: str | None  # the subscription's root field; None for a query or mutation sent over the socket


class Admission:
    def __init__(self, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...], max_tokens: int) -> None:
        self.schema, self.rules, self.max_tokens = schema, (*specified_rules, *rules), max_tokens
        self.known: dict[tuple[str, str | None], Checked] = {}

    def check(self, query: str, operation_name: str | None) -> Checked:
        key = (query, operation_name)
        found = self.known.get(key)
        if found is None:
            found = self._check(query, operation_name)
            if len(self.known) >= KEPT:
                del self.known[next(iter(self.known))]  # the oldest; documents in use come back soon enough
            self.known[key] = found
        return found

    def _check(self, query: str, operation_name: str | None) -> Checked:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError as error:
            return Checked(None, [error], None)
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return Checked(document, [GraphQLError("the document names no operation to run (operationName?)")],
                           None)
        if operation.operation is not OperationType.SUBSCRIPTION:
            return Checked(document, [], None)
        errors = validate_document(self.schema, document, self.rules)
        if errors:
            return Checked(document, errors, "")
        first = operation.selection_set.selections[0]
        root = first.name.value if isinstance(first, FieldNode) else ""
        return Checked(document, [], root)
