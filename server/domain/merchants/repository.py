from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import versioned
from server.domain.geo import Point, covering_cells, haversine_m
from server.domain.merchants.hours import SHANGHAI, slot_at
from server.domain.merchants.models import Merchant
from server.domain.paging import Key, Page, after_filter, combine
from server.domain.paging import count as count_matching
from server.services.mongo import Doc

# Index-only fields are large (open_slots alone holds up to 672 numbers) and never read back.
LEAN: dict[str, Any] = dict.fromkeys(("district_id", "area_id", "name", "description", "address", "categories",
                                      "location", "phone", "price_level", "hours", "version", "hours_exceptions"), 1)
RANKING: dict[str, Any] = {"open_slots": 0, "geo_cells": 0, "search_terms": 0}


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


def _filter(q: MerchantQuery) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"status": "published"}]
    if q.district_id:
        parts.append({"district_id": q.district_id})
    if q.area_id:
        parts.append({"area_id": q.area_id})
    if q.categories:
        parts.append({"categories": {"$in": q.categories}})
    if q.open_at is not None:
        # candidates: open now by the weekly slots, or with an exception date around today (checked exactly later)
        local_day = q.open_at.astimezone(SHANGHAI).date()
        near = [(local_day + timedelta(days=d)).isoformat() for d in (-1, 0)]
        parts.append({"$or": [{"open_slots": {"$in": [slot_at(q.open_at)]}},  # $in: see tests/contract
                              {"exception_dates": {"$in": near}}]})
    if q.with_ids is not None:
        parts.append({"_id": {"$in": q.with_ids}})
    if q.terms:
        parts.append({"search_terms": {"$all": q.terms}})
    if q.near is not None:
        parts.append({"geo_cells": {"$in": covering_cells(*q.near)}})
    return combine(*parts)


async def find_page(db: AsyncDatabase[Doc], q: MerchantQuery, first: int, after: Key | None) -> Page[Merchant]:
    base = _filter(q)
    if q.near is not None:
        return await _ranked_page(db, base, _by_distance(q.near, q.open_at), first, after, distances=True)
    if q.terms:
        return await _ranked_page(db, base, _by_relevance(q.terms, q.open_at), first, after)
    if q.open_at is not None:
        return await _ranked_page(db, base, _open_at(q.open_at), first, after)
    cursor = db.merchants.find(combine(base, after_filter(None, after)), LEAN).sort([("_id", 1)]).limit(first + 1)
    docs = [doc async for doc in cursor]

    async def count() -> int:
        return await count_matching(db.merchants, base)

    items = [(Merchant.from_doc(d), (None, d["_id"]), None) for d in docs[:first]]
    return Page(items, len(docs) > first, count)


Ranker = Callable[[Doc], float | None]  # a sort value (lower first), or None to leave the document out


def _by_distance(near: tuple[Point, float], open_at: datetime | None) -> Ranker:
    center, radius = near
    still_open = _open_at(open_at) if open_at is not None else None

    def rank(doc: Doc) -> float | None:
        lng, lat = doc["location"]["coordinates"]
        distance = round(haversine_m(center, Point(float(lat), float(lng))), 1)
        if distance > radius or (still_open is not None and still_open(doc) is None):
            return None
        return distance

    return rank


def _open_at(at: datetime) -> Ranker:
    def rank(doc: Doc) -> float | None:
        if not doc.get("exception_dates"):
            return 0.0  # the weekly slot already matched
        return 0.0 if Merchant.from_doc(doc).open_at(at) else None

    return rank


def _by_relevance(terms: list[str], open_at: datetime | None) -> Ranker:
    wanted = set(terms)
    still_open = _open_at(open_at) if open_at is not None else None

    def rank(doc: Doc) -> float | None:
        if still_open is not None and still_open(doc) is None:
            return None
        return 0.0 if wanted.issubset(doc.get("title_terms") or ()) else 1.0  # name or address match first

    return rank


async def _ranked_page(
    db: AsyncDatabase[Doc], base: dict[str, Any], rank: Ranker, first: int, after: Key | None,
    *, distances: bool = False,
) -> Page[Merchant]:
    """Order computed per query (distance, relevance): the candidates are few, so rank them all here."""
    ranked: list[tuple[float, str, Doc]] = []
    async for doc in db.merchants.find(base, RANKING):
        value = rank(doc)
        if value is not None:
            ranked.append((value, doc["_id"], doc))
    ranked.sort(key=lambda r: (r[0], r[1]))
    total = len(ranked)
    if after is not None:
        ranked = [r for r in ranked if (r[0], r[1]) > (float(after[0]), after[1])]

    async def count() -> int:
        return total

    items = [(Merchant.from_doc(d), (value, mid), value if distances else None) for value, mid, d in ranked[:first]]
    return Page(items, len(ranked) > first, count)


async def merchants_by_ids(db: AsyncDatabase[Doc], ids: Iterable[str]) -> dict[str, Merchant]:
    cursor = db.merchants.find({"_id": {"$in": list(ids)}}, LEAN)
    return {d["_id"]: Merchant.from_doc(d) async for d in cursor}



async def district_of_merchants(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, str]:
    """merchant id → its district id, for the merchants that exist."""
    return {d["_id"]: d["district_id"] async for d in db.merchants.find({"_id": {"$in": ids}}, {"district_id": 1})}


async def ids_in_district(db: AsyncDatabase[Doc], district_id: str) -> list[str]:
    # find, not distinct("_id"): nx-27017 cannot distinct on _id (tests/contract)
    cursor = db.merchants.find({"district_id": district_id, "status": "published"}, {"_id": 1})
    return [d["_id"] async for d in cursor]


async def search(db: AsyncDatabase[Doc], terms: list[str], limit: int) -> list[Merchant]:
    page = await _ranked_page(db, _filter(MerchantQuery(terms=terms)), _by_relevance(terms, None), limit, None)
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
