"""Static limits checked while validating a document: depth, aliases and cost.

Cost counts one per field; a field's selection is multiplied by its `first`
argument (or by a list's typical length), so a query asking 50 merchants with
50 offers each costs what it will really cost.  A `first` given as a variable
counts at the page maximum, which keeps the check in the validation cache.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from server.api.errors import QUERY_TOO_COSTLY, QUERY_TOO_DEEP, TOO_MANY_ALIASES, ApiError
from server.api.pagination import DEFAULT_PAGE, MAX_PAGE

# Lists without `first` count as ten items; connections without it as a default page
LIST_LENGTH = 10
LIST_FIELDS = frozenset({"areas", "offers", "products", "soldBy", "districts", "categories", "festivals",
                         "hours"})
CONNECTION_FIELDS = frozenset({"merchants"})


def limits_rule(max_depth: int, max_aliases: int, max_cost: int) -> type[ValidationRule]:
    class LimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments: dict[str, FragmentDefinitionNode] = {
                d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
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
                        fragment = self.fragments.get(name)
                        if fragment is not None and name not in seen:  # cycles are another rule's error
                            cost += walk(fragment.selection_set, depth, seen | {name})
                return cost

            cost = walk(node.selection_set, 0, frozenset())
            if max_seen > max_depth:
                self.report_error(ApiError(QUERY_TOO_DEEP, f"query depth exceeds {max_depth}",
                                           max=max_depth))
            elif aliases > max_aliases:
                self.report_error(ApiError(TOO_MANY_ALIASES, f"{aliases} aliases; at most {max_aliases}",
                                           max=max_aliases))
            elif cost > max_cost:
                self.report_error(ApiError(QUERY_TOO_COSTLY, f"query cost {cost} exceeds the budget {max_cost}",
                                           cost=cost, max=max_cost))

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

