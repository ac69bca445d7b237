"""Static limits checked while validating a document: depth, aliases and cost.

Cost counts one per field; a field's selection is multiplied by its `first`
argument (or by a list's typical length), so a query asking 50 merchants with
50 offers each costs what it will really cost.  A `first` given as a variable
counts at the page maximum, which keeps the check in the validation cache.

The rule also remembers each operation's cost by document text, so the per-client cost budget
(server/api/budget.py) charges what was computed here instead of walking the document again; the
validation cache skips the rule for a known document, and the remembered cost outlives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_operation_ast,
)
from server.api.errors import QUERY_TOO_COSTLY, QUERY_TOO_DEEP, TOO_MANY_ALIASES, ApiError
from server.api.pagination import DEFAULT_PAGE, MAX_PAGE

# Lists without `first` count as ten items; connections without it as a default page
LIST_LENGTH = 10
LIST_FIELDS = frozenset({"areas", "offers", "products", "soldBy", "districts", "categories", "festivals",
                         "hours"})
CONNECTION_FIELDS = frozenset({"merchants"})


COSTS_KEPT = 1024  # documents whose operation costs are remembered (the validation cache keeps 512)
_costs: dict[str, dict[str | None, int]] = {}  # document text → operation name → cost
MAX_MEASURED_DEPTH = 50  # the deepest GRAPHQL_MAX_DEPTH allowed; deeper documents never reach execution


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int
    aliases: int
    cost: int


def measure(operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode],
            max_depth: int) -> Measure:
    """Depth, aliases and cost of one operation; the walk stops below max_depth (the query is refused then)."""
    aliases = 0
    max_seen = 0

    def walk(selection_set: SelectionSetNode | None, depth: int, seen: frozenset[str]) -> int:
        nonlocal aliases, max_seen
        if selection_set is None:
            return 0
        max_seen = max(max_seen, depth)
        if max_seen > max_depth:
            return 0
        cost = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                if sel.alias is not None:
                    aliases += 1
                child = walk(sel.selection_set, depth + 1, seen) if sel.selection_set else 0
                cost += 1 + child * _multiplier(sel)
            elif isinstance(sel, InlineFragmentNode):
                cost += walk(sel.selection_set, depth, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:  # cycles are another rule's error
                    cost += walk(fragment.selection_set, depth, seen | {name})
        return cost

    cost = walk(operation.selection_set, 0, frozenset())
    return Measure(max_seen, aliases, cost)


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _remember(document: DocumentNode, operation: OperationDefinitionNode, cost: int) -> None:
    if document.loc is None:
        return
    text = document.loc.source.body
    known = _costs.get(text)
    if known is None:
        if len(_costs) >= COSTS_KEPT:
            del _costs[next(iter(_costs))]  # the oldest: documents in use are validated again soon enough
        known = _costs[text] = {}
    known[operation.name.value if operation.name else None] = cost


def operation_cost(document: DocumentNode, operation_name: str | None) -> int:
    """The cost of the operation that runs: as the limits rule computed it, else computed now."""
    if document.loc is not None and (known := _costs.get(document.loc.source.body)) is not None:
        if operation_name is None and len(known) == 1:
            return next(iter(known.values()))
        if operation_name in known:
            return known[operation_name]
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 1
    return measure(operation, _fragments(document), MAX_MEASURED_DEPTH).cost


def limits_rule(max_depth: int, max_aliases: int, max_cost: int) -> type[ValidationRule]:
    class LimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments = _fragments(context.document)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            found = measure(node, self.fragments, max_depth)
            if found.depth > max_depth:
                self.report_error(ApiError(QUERY_TOO_DEEP, f"query depth exceeds {max_depth}",
                                           max=max_depth))
            elif found.aliases > max_aliases:
                self.report_error(ApiError(TOO_MANY_ALIASES, f"{found.aliases} aliases; at most {max_aliases}",
                                           max=max_aliases))
            elif found.cost > max_cost:
                self.report_error(ApiError(QUERY_TOO_COSTLY,
                                           f"query cost {found.cost} exceeds the budget {max_cost}",
                                           cost=found.cost, max=max_cost))
            else:
                _remember(self.context.document, node, found.cost)

    return LimitsRule


def _multiplier(field: FieldNode) -> int:
    for arg in field.arguments or ():
        if arg.name.value == "first":
            if isinstance(arg.value, IntValueNode):
                return max(1, min(int(arg.value.value), MAX_PAGE))
            return MAX_PAGE
    if field.name.value in {"edges", "nodes"}:
        return 1
    if field.name.value in CONNECTION_FIELDS:
        return DEFAULT_PAGE
    return LIST_LENGTH if field.name.value in LIST_FIELDS else 1

