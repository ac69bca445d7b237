"""Published merchants per district, area and category, kept on write so that a count reads one document.

The content loader rebuilds the counters after it changed merchants; the back office's writes adjust
them by the difference between a merchant's document before and after.  Other filters combined are
counted by reading at most COUNT_CAP matches (merchants/repository.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.merchants import repository
from server.services.mongo import Doc

ALL = "all"


def district_key(district_id: str) -> str:
    return f"district:{district_id}"


def area_key(area_id: str) -> str:
    return f"area:{area_id}"


def category_key(slug: str) -> str:
    return f"category:{slug}"


def keys_of(doc: Doc | None) -> list[str]:
    if doc is None or doc.get("status") != "published":
        return []
    return [ALL, district_key(doc["district_id"]), area_key(doc["area_id"]),
            *(category_key(c) for c in dict.fromkeys(doc.get("categories") or []))]


async def apply(db: AsyncDatabase[Doc], before: Doc | None, after: Doc | None) -> None:
    delta: Counter[str] = Counter(keys_of(after))
    delta.subtract(keys_of(before))
    await repository.inc_counters(db, [(key, n) for key, n in sorted(delta.items()) if n])


async def rebuild(db: AsyncDatabase[Doc]) -> None:
    totals: Counter[str] = Counter()
    async for doc in repository.counted_fields(db):
        totals.update(keys_of(doc))
    await repository.replace_counters(db, sorted(totals.items()))


async def rebuild_known(db: AsyncDatabase[Doc], known: Iterable[Doc], read_ids: list[str]) -> None:
    """`rebuild` for the content loader, which holds the documents it just synced (`known`, stored as given):
    only the others (`read_ids`, the back office's) are read, not the whole city a second time."""
    totals: Counter[str] = Counter()
    for doc in known:
        totals.update(keys_of(doc))
    if read_ids:
        async for doc in repository.counted_fields(db, read_ids):
            totals.update(keys_of(doc))
    await repository.replace_counters(db, sorted(totals.items()))


async def by_keys(db: AsyncDatabase[Doc], keys: list[str]) -> dict[str, int]:
    return await repository.counters(db, keys)


def counter_for(district_id: str | None, area_id: str | None, categories: list[str], other_filters: bool) -> str | None:
    """The counter that holds a listing's total exactly, if one does."""
    if other_filters:
        return None
    wanted = set(categories)
    if area_id:
        return area_key(area_id) if not district_id and not wanted else None
    if district_id:
        return district_key(district_id) if not wanted else None
    if wanted:
        return category_key(next(iter(wanted))) if len(wanted) == 1 else None
    return ALL
