from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import versioned
from server.domain.paging import Key, Page, after_filter, combine
from server.domain.paging import count as count_matching
from server.domain.products.models import Product
from server.services.mongo import Doc

LEAN: dict[str, Any] = {"search_terms": 0}


@dataclass(slots=True)
class ProductQuery:
    category: str | None = None
    merchant_id: str | None = None
    district_merchant_ids: list[str] | None = None
    terms: list[str] = field(default_factory=list)


async def find_page(db: AsyncDatabase[Doc], q: ProductQuery, first: int, after: Key | None) -> Page[Product]:
    parts: list[dict[str, Any]] = []
    if q.category:
        parts.append({"category": q.category})
    if q.merchant_id:
        # membership as $in: nx-27017 misses a bare equality on an indexed array
        # (tests/contract: test_gap_bare_equality_on_an_indexed_array)
        parts.append({"sold_by": {"$in": [q.merchant_id]}})
    if q.district_merchant_ids is not None:
        parts.append({"sold_by": {"$in": q.district_merchant_ids}})
    if q.terms:
        parts.append({"search_terms": {"$all": q.terms}})
    base = combine(*parts)
    cursor = db.products.find(combine(base, after_filter(None, after)), LEAN).sort([("_id", 1)]).limit(first + 1)
    docs = [d async for d in cursor]

    async def count() -> int:
        return await count_matching(db.products, base)

    items = [(Product.from_doc(d), (None, d["_id"]), None) for d in docs[:first]]
    return Page(items, len(docs) > first, count)


async def by_merchants(db: AsyncDatabase[Doc], merchant_ids: list[str]) -> dict[str, list[Product]]:
    out: dict[str, list[Product]] = defaultdict(list)
    wanted = set(merchant_ids)
    async for doc in db.products.find({"sold_by": {"$in": merchant_ids}}, LEAN).sort([("_id", 1)]):
        product = Product.from_doc(doc)
        for merchant_id in wanted.intersection(product.sold_by):
            out[merchant_id].append(product)
    return out


async def by_ids(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, Product]:
    return {d["_id"]: Product.from_doc(d) async for d in db.products.find({"_id": {"$in": ids}}, LEAN)}


async def search(db: AsyncDatabase[Doc], terms: list[str], limit: int) -> list[Product]:
    cursor = db.products.find({"search_terms": {"$all": terms}}).sort([("_id", 1)]).limit(limit)
    return [Product.from_doc(d) async for d in cursor]


async def product_doc(db: AsyncDatabase[Doc], product_id: str) -> Doc | None:
    return await db.products.find_one({"_id": product_id})


async def set_sellers(db: AsyncDatabase[Doc], product_id: str, sellers: list[str]) -> None:
    await db.products.update_one({"_id": product_id}, {"$set": {"sold_by": sellers, "origin": "backoffice"}})


async def insert_product(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.products.insert_one(doc)


async def save_product(db: AsyncDatabase[Doc], before: Doc, version: int, changes: Doc) -> Doc:
    return await versioned.save(db.products, before, version, changes)


async def all_with_owners(db: AsyncDatabase[Doc]) -> list[tuple[Product, str | None]]:
    """Every product by category, with the shop that created it (None for a shared city specialty)."""
    cursor = db.products.find({}).sort([("category", 1), ("_id", 1)])
    return [(Product.from_doc(d), d.get("owner_merchant_id")) async for d in cursor]
