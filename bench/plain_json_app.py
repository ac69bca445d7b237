"""Baseline for bench/graphql_read.py: the district page as one hand-written JSON endpoint.

`GET /district/{slug}?first=20` reads what the DistrictPage GraphQL operation shows
(the district, its areas, the first published merchants by _id with their opening hours,
their offers active now and the 深圳手信 products they sell) straight from MongoDB with
pymongo's AsyncMongoClient: one query per collection, `$in`-batched, with projections,
independent queries run concurrently.  Texts are zh-CN (falling back like the app does).
No GraphQL, no DataLoaders, no typed models.

Run alone: MONGODB_URL=… MONGODB_DB=bench uvicorn plain_json_app:app_from_env --factory --app-dir bench
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.domain.i18n import pick
from server.domain.merchants.hours import closes_at, is_open, parse_week

Doc = dict[str, Any]
LOCALE = "zh-CN"
MAX_FIRST = 50


def _zh(texts: dict[str, str] | None) -> str:
    return pick(texts, LOCALE)


def _iso(value: datetime) -> str:
    return value.isoformat()


async def district_page(request: Request) -> Response:
    db = request.app.state.db
    slug = request.path_params["slug"]
    try:
        first = min(max(int(request.query_params.get("first", "20")), 0), MAX_FIRST)
    except ValueError:
        return JSONResponse({"error": "first must be an integer"}, status_code=400)
    now = datetime.now(UTC)

    async def areas() -> list[Doc]:
        cursor = db.areas.find({"district_id": slug}, {"name": 1, "capacity": 1}).sort([("sort", 1), ("_id", 1)])
        return [d async for d in cursor]

    async def merchants() -> list[Doc]:
        cursor = (db.merchants.find({"district_id": slug, "status": "published"},
                                    {"name": 1, "price_level": 1, "hours": 1, "categories": 1})
                  .sort([("_id", 1)]).limit(first + 1))
        return [d async for d in cursor]

    district, area_docs, merchant_docs = await asyncio.gather(
        db.districts.find_one({"_id": slug}, {"name": 1, "description": 1}), areas(), merchants())
    if district is None:
        return JSONResponse({"error": f"no district {slug!r}"}, status_code=404)
    has_next = len(merchant_docs) > first
    merchant_docs = merchant_docs[:first]
    ids = [m["_id"] for m in merchant_docs]

    async def offers() -> list[Doc]:
        query = {"status": "published", "merchant_id": {"$in": ids},
                 "valid_from": {"$lte": now}, "valid_until": {"$gt": now}}
        projection = {"merchant_id": 1, "title": 1, "coupon_code": 1, "valid_from": 1, "valid_until": 1}
        cursor = db.offers.find(query, projection).sort([("valid_until", 1), ("_id", 1)])
        return [d async for d in cursor]

    async def products() -> list[Doc]:
        cursor = db.products.find({"sold_by": {"$in": ids}}, {"name": 1, "sold_by": 1}).sort([("_id", 1)])
        return [d async for d in cursor]

    offer_docs, product_docs = await asyncio.gather(offers(), products()) if ids else ([], [])
    offers_of: dict[str, list[Doc]] = {i: [] for i in ids}
    for o in offer_docs:
        offers_of[o["merchant_id"]].append({
            "id": o["_id"], "title": _zh(o.get("title")), "coupon_code": o.get("coupon_code"),
            "valid_from": _iso(o["valid_from"]), "valid_until": _iso(o["valid_until"]),
        })
    products_of: dict[str, list[Doc]] = {i: [] for i in ids}
    for p in product_docs:
        item = {"id": p["_id"], "name": _zh(p.get("name"))}
        for merchant_id in p.get("sold_by") or []:
            if merchant_id in products_of:
                products_of[merchant_id].append(item)

    out_merchants = []
    for m in merchant_docs:
        hours: dict[str, list[str]] = m.get("hours") or {}
        spans = parse_week(hours)
        out_merchants.append({
            "id": m["_id"], "name": _zh(m.get("name")), "price_level": m.get("price_level"),
            "categories": m.get("categories") or [], "hours": hours,
            "open_now": is_open(spans, now), "closes_at": closes_at(spans, now),
            "offers": offers_of[m["_id"]], "products": products_of[m["_id"]],
        })
    return JSONResponse({
        "locale": LOCALE,
        "district": {"id": district["_id"], "name": _zh(district.get("name")),
                     "description": _zh(district.get("description"))},
        "areas": [{"id": a["_id"], "name": _zh(a.get("name")), "capacity": a.get("capacity")} for a in area_docs],
        "merchants": out_merchants,
        "has_next_page": has_next,
    })


def create_app(mongo_url: str, db_name: str = "bench", listeners: list[CommandListener] | None = None) -> Starlette:
    """The baseline app; `listeners` observe its MongoDB client (the bench counts commands)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(
            mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000,
            event_listeners=listeners or [])
        try:
            app.state.db = client[db_name]
            yield
        finally:
            await client.close()

    return Starlette(routes=[Route("/district/{slug}", district_page)], lifespan=lifespan)


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory`: MONGODB_URL and MONGODB_DB from the environment."""
    return create_app(os.environ["MONGODB_URL"], os.environ.get("MONGODB_DB", "bench"))
