"""Keyset paging shared by the repositories: stable order, no skip()."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pymongo.asynchronous.collection import AsyncCollection

T = TypeVar("T")

Key = tuple[Any, str]  # (sort value, _id); the _id breaks ties


@dataclass(slots=True)
class Page(Generic[T]):
    items: Sequence[tuple[T, Key, float | None]]  # item, its key, distance in metres if any
    has_next: bool
    count: Callable[[], Awaitable[int]]
    # where a page cut short by a read cap stopped (after its last item): the end cursor then
    resume: Key | None = None


def after_filter(field: str | None, after: Key | None) -> dict[str, Any]:
    """Mongo filter for "strictly after this key" in ascending (field, _id) order."""
    if after is None:
        return {}
    value, last_id = after
    if field is None:
        return {"_id": {"$gt": last_id}}
    return {"$or": [{field: {"$gt": value}}, {field: value, "_id": {"$gt": last_id}}]}


def combine(*filters: dict[str, Any]) -> dict[str, Any]:
    """All of the filters: one flat document when their fields differ (the embedded server plans that
    far better than an $and; measured by bench/graphql_read.py), $and only where two share a field.
    Both forms are pinned by tests/contract (test_several_clauses_flat_and_with_and)."""
    parts = [f for f in filters if f]
    merged: dict[str, Any] = {}
    rest: list[dict[str, Any]] = []
    for part in parts:
        if merged.keys().isdisjoint(part):
            merged.update(part)
        else:
            rest.append(part)
    if not rest:
        return merged
    return {"$and": [merged, *rest]}


async def count(collection: AsyncCollection[dict[str, Any]], query: dict[str, Any]) -> int:
    """Matching documents.  `$count` rather than count_documents' `$group`, which the embedded
    server runs ~40x slower (measured by bench/graphql_read.py); both are standard MongoDB.
    Pinned by tests/contract (test_count_stage_counts_matches)."""
    async for doc in await collection.aggregate([{"$match": query}, {"$count": "n"}]):
        return int(doc["n"])
    return 0
