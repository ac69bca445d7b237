"""Compare-and-set saves of whole documents.

A save replaces the document only if its `version` is still the one the
editor loaded, so the second of two concurrent saves matches nothing and
becomes a Conflict.  Whole-document replaces also sidestep an nx-27017 gap:
a datetime written with `$set` onto an existing document reads back as a
string there, while a replaced document keeps it.  Pinned in tests/contract/test_mongo_assumptions.py:
test_replace_with_version_filter_is_a_compare_and_set_keeping_datetimes and
test_gap_top_level_datetime_set_on_an_existing_document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from server.domain.errors import Conflict, NotFound

Doc = dict[str, Any]


async def save(collection: AsyncCollection[Doc], before: Doc, version: int, changes: Doc) -> Doc:
    after = {**before, **changes, "version": version + 1, "origin": "backoffice", "updated_at": datetime.now(UTC)}
    body = {k: v for k, v in after.items() if k != "_id"}
    result = await collection.replace_one({"_id": before["_id"], "version": version}, body)
    if result.matched_count == 0:
        current = await collection.find_one({"_id": before["_id"]})
        if current is None:
            raise NotFound(f"{before['_id']!r} no longer exists")
        raise Conflict(current)
    return after
