"""Merchant reads: every list reads about one page of documents, in an index's order.

Listings are in `key` order (a copy of `_id`: the embedded server cannot put `_id` in a compound
index, see tests/contract), so a page is the next `first + 1` keys after the cursor.  Search ranks by
tier (the name, then name or address, then anywhere), one key-ordered read per tier.  "Near" reads
growing boxes around the point, nearest first, until the page is full and nothing outside the box
read so far can come before its last result.  Counts come from merchants/counts.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from server.domain import versioned
from server.domain.geo import MAX_RADIUS_M, Point, box_ranges, haversine_m
from server.domain.merchants import postings
from server.domain.merchants.derived import open_keys_at
from server.domain.merchants.models import Merchant
from server.domain.paging import Key, Page, combine
from server.services.mongo import Doc

# Index-only fields are large (open_keys alone holds up to 672 numbers) and never read back.
LEAN: dict[str, Any] = dict.fromkeys(("district_id", "area_id", "name", "description", "address", "categories",
                                      "location", "phone", "price_level", "hours", "version", "hours_exceptions",
                                      "exception_dates"), 1)
# Read past the page when a filter can only be checked here (an exception date's hours): a few more per
# batch, and another batch only if those were not enough.
MARGIN = 4
# Nearest first: the first box, and how it grows while the page is not full.
FIRST_BOX_M = 50.0
GROWTH = 2.0
MAX_GROWTH = 8.0
# A box read for a count stops here: counts past it are shown as "1,000+".
COUNT_CAP = 1000
# a count that checks documents here (near: per band range; open now) reads at most this many of them
NEAR_COUNT_READ = 100
# A page (or count) that walks postings lists and checks candidates reads at most this many keys: past
# it, a search with a filter that rejects most of a common word's merchants answers a short page whose
# cursor continues the walk (hasNextPage true), not a walk of the whole city.
WALK_CAP = 500


@dataclass(slots=True)
class MerchantQuery:
    district_id: str | None = None
    area_id: str | None = None
    categories: list[str] = field(default_factory=list)
    open_at: datetime | None = None
    # merchants with an offer active now, found by the offers repository
    with_ids: list[str] | None = None
    near: tuple[Point, float] | None = None
    terms: list[str] = field(default_factory=list)


def base_filter(q: MerchantQuery) -> dict[str, Any]:
    """What a merchant must hold to be listed, apart from distance, exception dates and search terms (checked
    here: the terms live in postings lists, merchants/postings.py)."""
    parts: list[dict[str, Any]] = [{"status": "published"}]
    if q.district_id:
        parts.append({"district_id": q.district_id})
    if q.area_id:
        parts.append({"area_id": q.area_id})
    if q.categories:
        parts.append({"categories": {"$in": q.categories}})
    if q.open_at is not None:
        parts.append({"open_keys": {"$in": open_keys_at(q.open_at)}})  # $in: see tests/contract
    if q.with_ids is not None:
        parts.append({"_id": {"$in": q.with_ids}})
    return combine(*parts)


def _really_open(doc: Doc, at: datetime | None) -> bool:
    # open_keys holds whole hours and exception marks: a candidate is checked to the minute here
    return at is None or Merchant.from_doc(doc).open_at(at)


async def _keyed(db: AsyncDatabase[Doc], query: dict[str, Any], after_id: str | None, want: int,
                 accept: Any, projection: dict[str, Any]) -> tuple[list[Doc], bool]:
    """Up to `want` accepted documents after `after_id` in key order, and whether the read ran out."""
    out: list[Doc] = []
    last = after_id
    while len(out) < want:
        batch_size = want - len(out) + MARGIN
        # always a range on key, even from the start: the embedded server then walks an index in key order
        cursor = db.merchants.find(combine(query, {"key": {"$gt": last if last is not None else ""}}),
                                   projection).sort([("key", 1)]).limit(batch_size)
        batch = [d async for d in cursor]
        out.extend(d for d in batch if accept(d))
        if len(batch) < batch_size:
            return out[:want], True
        last = batch[-1]["_id"]
    return out[:want], False


async def _take(keys: AsyncIterator[str], n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n and (key := await anext(keys, None)) is not None:
        out.append(key)
    return out


async def _listed(db: AsyncDatabase[Doc], sources: list[tuple[int, AsyncIterator[str]]], query: dict[str, Any],
                  want: int, accept: Any, projection: dict[str, Any],
                  keep: set[str] | None = None) -> tuple[list[tuple[int, Doc]], tuple[int, str] | None]:
    """Up to `want` accepted merchants from postings walks taken one after the other (a search's tiers), in
    their order, each with its source's tag: the next keys (a page and a margin, across sources, twice as
    many each time candidates were rejected) read by `_id` in one command, the rest of the filter checked
    on those alone; only keys in `keep` are read when it is given.  Past WALK_CAP keys walked the walk
    stops short, and the second value is where it stopped (tag, last key walked): the next page's cursor."""
    out: list[tuple[int, Doc]] = []
    source = 0
    walked = 0
    step = 0
    last: tuple[int, str] | None = None
    while len(out) < want and source < len(sources):
        if walked >= WALK_CAP:
            return out, last
        step = min(max(step * 2, want - len(out) + MARGIN), WALK_CAP - walked)
        batch: list[tuple[int, str]] = []
        while len(batch) < step and source < len(sources):
            tag, keys = sources[source]
            got = await _take(keys, step - len(batch))
            if len(got) < step - len(batch):
                source += 1
            batch.extend((tag, k) for k in got)
        walked += len(batch)
        if batch:
            last = batch[-1]
        ids = sorted({k for _, k in batch if keep is None or k in keep})
        if ids:
            cursor = db.merchants.find(combine(query, {"_id": {"$in": ids}}), projection)
            docs = {d["_id"]: d async for d in cursor}
            out.extend((tag, d) for tag, k in batch if (d := docs.get(k)) is not None and accept(d, tag))
    return out[:want], None


def _placed(q: MerchantQuery) -> Any:
    """The district and area check, made here on a candidate read by `_id`: in the filter beside the `_id $in`,
    nx-27017 walks the (district_id, key) index instead (all 9,644 merchants of 华强北 at 50,000 for a page)."""
    def placed(doc: Doc) -> bool:
        return ((q.district_id is None or doc.get("district_id") == q.district_id)
                and (q.area_id is None or doc.get("area_id") == q.area_id))

    return placed


def _checked_filter(q: MerchantQuery) -> tuple[dict[str, Any], Any, set[str] | None]:
    """The filter a postings candidate is read with (an `_id $in` joins it, of the keys in the third value
    alone when the query names merchants), and the checks made here (district and area, the minute of
    opening)."""
    with_ids = set(q.with_ids) if q.with_ids is not None else None
    placed = _placed(q)

    def accept(doc: Doc) -> bool:
        return placed(doc) and (with_ids is None or doc["_id"] in with_ids) and _really_open(doc, q.open_at)

    # open_keys stays in the filter: a candidate closed this hour is not sent back at all
    return base_filter(replace(q, with_ids=None, district_id=None, area_id=None)), accept, with_ids


async def _open_in_district(db: AsyncDatabase[Doc], q: MerchantQuery, want: int, after_id: str | None,
                            accept: Any) -> tuple[list[Doc], str | None]:
    """The accepted open merchants, and where a walk cut short by WALK_CAP stopped."""
    assert q.open_at is not None and q.district_id is not None
    query, _, keep = _checked_filter(q)
    placed = _placed(q)
    names = postings.open_lists(q.district_id, q.open_at)
    # the three lists' heads in one command; a page past a head reads blocks by range
    keys = postings.merged(db, names, after_id, await postings.heads(db, names))
    found, stopped = await _listed(db, [(0, keys)], query, want, lambda d, _: placed(d) and accept(d), LEAN, keep)
    return [d for _, d in found], stopped[1] if stopped else None


async def find_page(db: AsyncDatabase[Doc], q: MerchantQuery, first: int, after: Key | None) -> Page[Merchant]:
    if q.near is not None:
        return await _near_page(db, q, first, after)
    if q.terms:
        return await _search_page(db, q, first, after)
    stopped = None
    if q.open_at is not None and q.district_id:
        docs, stopped = await _open_in_district(db, q, first + 1, after[1] if after else None, _checked_filter(q)[1])
    else:
        docs, _ = await _keyed(db, base_filter(q), after[1] if after else None, first + 1,
                               lambda d: _really_open(d, q.open_at), LEAN)
    # openNow pages keep the cursors they had when they were ranked (every value 0.0)
    value = 0.0 if q.open_at is not None else None
    items = [(Merchant.from_doc(d), (value, d["_id"]), None) for d in docs[:first]]
    return Page(items, len(docs) > first or stopped is not None, no_count,
                (value, stopped) if stopped is not None and len(docs) <= first else None)


async def no_count() -> int:
    raise AssertionError("counts come from merchants.counts")


async def _search_page(db: AsyncDatabase[Doc], q: MerchantQuery, first: int, after: Key | None) -> Page[Merchant]:
    """Tier by tier (postings.py), each tier's merchants by key; a page reads the tiers' lists' heads in one
    command and their first candidates in another."""
    query, accept_filters, keep = _checked_filter(q)
    start = int(after[0]) if after is not None and isinstance(after[0], int | float) else 0
    start = max(0, min(start, postings.TIERS - 1))
    tiers = range(start, postings.TIERS)
    plans = {tier: postings.search_lists(tier, q.terms) for tier in tiers}
    # every tier's lists' heads in one command; the cursor's own tier walks on from the cursor
    heads = await postings.heads(db, [name for tier in tiers for name in plans[tier][0]])
    sources = [(tier, postings.merged(db, plans[tier][0], after[1] if after is not None and tier == start else None,
                                      heads))
               for tier in tiers]

    def accept(doc: Doc, tier: int) -> bool:
        return (not plans[tier][1] or postings.tier_of(doc, q.terms) == tier) and accept_filters(doc)

    found, stopped = await _listed(db, sources, query, first + 1, accept, LEAN, keep)
    items = [(Merchant.from_doc(d), (float(tier), d["_id"]), None) for tier, d in found[:first]]
    resume = (float(stopped[0]), stopped[1]) if stopped is not None and len(found) <= first else None
    return Page(items, len(found) > first or stopped is not None, no_count, resume)


async def _box(db: AsyncDatabase[Doc], base: dict[str, Any], center: Point, radius_m: float,
               projection: dict[str, Any], limit: int = 0) -> list[Doc]:
    field_, ranges = box_ranges(center, radius_m)

    async def read(low: str, high: str) -> list[Doc]:
        cursor = db.merchants.find(combine(base, {field_: {"$gte": low, "$lte": high}}), projection)
        return [d async for d in (cursor.limit(limit) if limit else cursor)]

    # the (at most three) band ranges travel together
    return [d for docs in await asyncio.gather(*(read(lo, hi) for lo, hi in ranges)) for d in docs]


def _distance(center: Point, doc: Doc) -> float:
    lng, lat = doc["location"]["coordinates"]
    return round(haversine_m(center, Point(float(lat), float(lng))), 1)


async def _with_term_keys(db: AsyncDatabase[Doc], q: MerchantQuery) -> MerchantQuery:
    """A search near a point reads only the lead term's merchants (`_id $in`) when its lists hold at most
    WALK_CAP of them: a rare word then reads its few merchants, not every merchant of a growing box."""
    if not q.terms:
        return q
    lists = [postings.search_list(tier, postings.lead_term(q.terms)) for tier in range(postings.TIERS)]
    keys = await _take(postings.merged(db, lists, None, await postings.heads(db, lists)), WALK_CAP + 1)
    if len(keys) > WALK_CAP:
        return q
    kept = keys if q.with_ids is None else sorted(set(keys) & set(q.with_ids))
    return replace(q, with_ids=kept)


async def _near_page(db: AsyncDatabase[Doc], q: MerchantQuery, first: int, after: Key | None) -> Page[Merchant]:
    assert q.near is not None
    center, radius = q.near
    base = base_filter(await _with_term_keys(db, q))
    after_key = (float(after[0]), after[1]) if after is not None else None
    reach = min(radius, max(FIRST_BOX_M, after_key[0] * GROWTH if after_key else 0.0))
    # each merchant's distance, document and whether it passes the checks made here, worked out once
    seen: dict[str, tuple[float, Doc, bool]] = {}
    while True:
        for doc in await _box(db, base, center, reach, LEAN):
            if doc["_id"] not in seen:
                seen[doc["_id"]] = (_distance(center, doc), doc,
                                    _really_open(doc, q.open_at) and postings.holds(doc, q.terms))
        # everything within `reach` is now known: results up to it are final
        ranked = sorted((dist, mid) for mid, (dist, _, ok) in seen.items()
                        if ok and dist <= radius and (after_key is None or (dist, mid) > after_key))
        settled = [r for r in ranked if r[0] <= reach]
        if len(settled) > first or reach >= radius:
            break
        # grow by the density seen so far: where the area holds few merchants, straight to a box that
        # should hold the page (a sparse city asks few boxes), where it holds many, by GROWTH at least
        area_needed = (first + 1) / max(len(settled), 0.5)
        reach = min(radius, reach * min(MAX_GROWTH, max(GROWTH, math.sqrt(area_needed) * 1.2)))
    page = settled[: first + 1]
    items = [(Merchant.from_doc(seen[mid][1]), (dist, mid), dist) for dist, mid in page[:first]]
    return Page(items, len(page) > first, no_count)


async def count_near(db: AsyncDatabase[Doc], q: MerchantQuery) -> tuple[int, bool]:
    """Merchants within the radius, exact while the box holds at most NEAR_COUNT_READ of them; beyond,
    the matches among those read, flagged as a floor (shown as "N+"): an exact count would read them all."""
    assert q.near is not None
    center, radius = q.near
    # only the location is needed unless the hours are checked: a tenth of the bytes per candidate
    projection = LEAN if q.open_at is not None or q.terms else {"location": 1}
    # a rare word's own merchants alone (as the page reads them), not the first of the box's
    docs = await _box(db, base_filter(await _with_term_keys(db, q)), center, min(radius, MAX_RADIUS_M), projection,
                      limit=NEAR_COUNT_READ)
    inside = {d["_id"] for d in docs if _distance(center, d) <= radius and _really_open(d, q.open_at)
              and postings.holds(d, q.terms)}
    return len(inside), len(docs) >= NEAR_COUNT_READ


async def count_matching(db: AsyncDatabase[Doc], q: MerchantQuery) -> tuple[int, bool]:
    """Matches of a filter no counter keeps, read up to COUNT_CAP (then the flag says it is a floor)."""
    if q.terms:
        return await _count_search(db, q)
    if q.open_at is not None and q.district_id and not q.terms:
        # the district's open lists find the hour's candidates and the minute is checked here, so each is
        # read whole: at most about a page of them (like a near count), in key order
        with_ids = set(q.with_ids) if q.with_ids is not None else None
        docs, stopped = await _open_in_district(db, q, NEAR_COUNT_READ, None,
                                                lambda d: with_ids is None or d["_id"] in with_ids)
        return sum(_really_open(d, q.open_at) for d in docs), len(docs) >= NEAR_COUNT_READ or stopped is not None
    if q.open_at is not None:
        # open_keys finds the hour's candidates and the minute is checked here, so each is read whole: at
        # most about a page of them (like a near count), in key order along the listing's own index
        cursor = db.merchants.find(combine(base_filter(q), {"key": {"$gt": ""}}), LEAN).sort([("key", 1)])
        docs = [d async for d in cursor.limit(NEAR_COUNT_READ)]
        return sum(_really_open(d, q.open_at) for d in docs), len(docs) >= NEAR_COUNT_READ
    pipeline: list[Doc] = [{"$match": base_filter(q)}, {"$limit": COUNT_CAP}, {"$count": "n"}]
    n = 0
    async for doc in await db.merchants.aggregate(pipeline):
        n = int(doc["n"])
    return n, n >= COUNT_CAP


async def _count_search(db: AsyncDatabase[Doc], q: MerchantQuery) -> tuple[int, bool]:
    """One term alone: the lengths of its three lists, read up to COUNT_CAP.  Several terms or other filters:
    the lead term's merchants that pass them all, the filter's indexed parts in the read, counted along its
    lists up to WALK_CAP keys walked (a floor, shown as "N+", when the walk stopped there)."""
    lead = postings.lead_term(q.terms)
    lists = [postings.search_list(tier, lead) for tier in range(postings.TIERS)]
    if len(q.terms) == 1 and replace(q, terms=[]) == MerchantQuery():
        n = await postings.length(db, lists, COUNT_CAP)
        return n, n >= COUNT_CAP
    query, accept, keep = _checked_filter(q)
    keys = postings.merged(db, lists, None, await postings.heads(db, lists))
    found, stopped = await _listed(db, [(0, keys)], query, WALK_CAP, lambda d, _: accept(d)
                                   and postings.holds(d, q.terms), LEAN, keep)
    return len(found), stopped is not None


async def merchants_by_ids(db: AsyncDatabase[Doc], ids: Iterable[str]) -> dict[str, Merchant]:
    cursor = db.merchants.find({"_id": {"$in": list(ids)}}, LEAN)
    return {d["_id"]: Merchant.from_doc(d) async for d in cursor}


async def district_of_merchants(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, str]:
    """merchant id → its district id, for the merchants that exist."""
    return {d["_id"]: d["district_id"] async for d in db.merchants.find({"_id": {"$in": ids}}, {"district_id": 1})}


async def ids_in_district(db: AsyncDatabase[Doc], district_id: str) -> list[str]:
    # find, not distinct("_id"): nx-27017 cannot distinct on _id (tests/contract: test_gap_distinct_of_id)
    cursor = db.merchants.find({"district_id": district_id, "status": "published"}, {"_id": 1})
    return [d["_id"] async for d in cursor]


async def search(db: AsyncDatabase[Doc], terms: list[str], limit: int) -> list[Merchant]:
    page = await _search_page(db, MerchantQuery(terms=terms), limit, None)
    return [merchant for merchant, _, _ in page.items]


async def merchant_doc(db: AsyncDatabase[Doc], merchant_id: str) -> Doc | None:
    return await db.merchants.find_one({"_id": merchant_id})


async def district_of_merchant(db: AsyncDatabase[Doc], merchant_id: str) -> str | None:
    doc = await db.merchants.find_one({"_id": merchant_id}, {"district_id": 1})
    return str(doc["district_id"]) if doc else None


async def insert_merchant(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.merchants.insert_one(doc)


async def save_merchant(db: AsyncDatabase[Doc], before: Doc, version: int, changes: Doc) -> Doc:
    return await versioned.save(db.merchants, before, version, changes)


async def merchants_where(db: AsyncDatabase[Doc], *, district_ids: list[str] | None = None,
                          merchant_ids: list[str] | None = None) -> list[Merchant]:
    """All merchants (no argument), those of these districts, or these ones; by district, then id."""
    query: dict[str, Any] = {}
    if district_ids is not None:
        query = {"district_id": {"$in": district_ids}}
    elif merchant_ids is not None:
        query = {"_id": {"$in": merchant_ids}}
    return [Merchant.from_doc(d) async for d in db.merchants.find(query).sort([("district_id", 1), ("_id", 1)])]


async def categories_by_area(db: AsyncDatabase[Doc], area_ids: list[str]) -> dict[str, dict[str, int]]:
    """Published merchants per category slug, per area: which errands an area serves."""
    out: dict[str, dict[str, int]] = {a: {} for a in area_ids}
    cursor = db.merchants.find({"status": "published", "area_id": {"$in": area_ids}}, {"area_id": 1, "categories": 1})
    async for doc in cursor:
        counts = out.setdefault(doc["area_id"], {})
        for slug in doc.get("categories") or []:
            counts[slug] = counts.get(slug, 0) + 1
    return out


async def inc_counters(db: AsyncDatabase[Doc], delta: list[tuple[str, int]]) -> None:
    """Add each n to its counter in merchant_counts (created at 0 when new); one write."""
    ops = [UpdateOne({"_id": key}, {"$inc": {"n": n}}, upsert=True) for key, n in delta]
    if ops:
        await db.merchant_counts.bulk_write(ops, ordered=False)


async def counted_fields(db: AsyncDatabase[Doc], ids: list[str] | None = None) -> AsyncIterator[Doc]:
    """Every merchant's (or those of `ids`) fields the counters count by, streamed."""
    fields: dict[str, Any] = {"district_id": 1, "area_id": 1, "categories": 1, "status": 1}
    async for doc in db.merchants.find({} if ids is None else {"_id": {"$in": ids}}, fields):
        yield doc


async def replace_counters(db: AsyncDatabase[Doc], totals: list[tuple[str, int]]) -> None:
    """Set every counter, then drop the ones no longer counted: readers never see the counters missing, and two
    loaders setting the same totals at once (two web processes starting on changed content) both succeed."""
    ops = [UpdateOne({"_id": key}, {"$set": {"n": n}}, upsert=True) for key, n in totals]
    for _ in range(2):  # an upsert that lost the insert race to the other loader is an update the second time
        try:
            if ops:
                await db.merchant_counts.bulk_write(ops, ordered=False)
            break
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
    await db.merchant_counts.delete_many({"_id": {"$nin": [key for key, _ in totals]}})


async def counters(db: AsyncDatabase[Doc], keys: list[str]) -> dict[str, int]:
    return {d["_id"]: int(d["n"]) async for d in db.merchant_counts.find({"_id": {"$in": keys}})}


async def back_office_merchant_docs(db: AsyncDatabase[Doc]) -> AsyncIterator[Doc]:
    """Merchants the back office owns (origin "backoffice"), streamed."""
    async for doc in db.merchants.find({"origin": "backoffice"}):
        yield doc


async def set_merchant_fields(db: AsyncDatabase[Doc], merchant_id: str, fields: Doc,
                              unset: tuple[str, ...] = ()) -> None:
    await db.merchants.update_one({"_id": merchant_id}, {"$set": fields, **({"$unset": dict.fromkeys(unset, "")}
                                                                         if unset else {})})
