"""深圳手信 writes: a merchant says which specialties it sells, and keeps its own products."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.errors import NotFound
from server.domain.forms import Problems
from server.domain.merchants import repository as merchants
from server.domain.products import repository
from server.domain.products.models import CATEGORIES, Product
from server.domain.search.terms import index_terms
from server.services.mongo import Doc
from server.services.public_cache import changed


@dataclass(slots=True)
class ProductInput:
    name: dict[str, str] = field(default_factory=dict)
    story: dict[str, str] = field(default_factory=dict)
    category: str = "food"
    price_min_fen: Any = None
    price_max_fen: Any = None
    unit: dict[str, str] = field(default_factory=dict)


def _validate(data: ProductInput) -> dict[str, Any]:
    p = Problems()
    name = p.localized("name", data.name, required=True, max_len=80)
    story = p.localized("story", data.story, required=True, max_len=2000)
    unit = p.localized("unit", data.unit, required=False, max_len=20)
    if data.category not in CATEGORIES:
        p.add("category", "invalid_choice")
    low = p.integer("price_min_fen", data.price_min_fen, 0, 10**9, required=True)
    high = p.integer("price_max_fen", data.price_max_fen, 0, 10**9, required=True)
    if low is not None and high is not None and high < low:
        p.add("price_max_fen", "max_below_min")
    p.raise_if_any()
    return {"name": name, "story": story, "unit": unit, "category": data.category, "price_min_fen": low,
            "price_max_fen": high, "search_terms": index_terms([*name.values(), *story.values()])}


async def _merchant_district(db: AsyncDatabase[Doc], merchant_id: str) -> str:
    district_id = await merchants.district_of_merchant(db, merchant_id)
    if district_id is None:
        raise NotFound(f"no merchant {merchant_id!r}")
    return district_id


async def set_sold_here(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str, product_id: str,
                        sold: bool) -> Product:
    """Add or remove this shop from where a specialty can be bought."""
    district_id = await _merchant_district(db, merchant_id)
    authz.merchant_only(actor, merchant_id, "products")
    before = await repository.product_doc(db, product_id)
    if before is None:
        raise NotFound(f"no product {product_id!r}")
    sellers = [m for m in before.get("sold_by", []) if m != merchant_id] + ([merchant_id] if sold else [])
    await repository.set_sellers(db, product_id, sellers)
    after = {**before, "sold_by": sellers}
    await audit.record(db, actor, "product.sold_here" if sold else "product.not_sold_here", "product", product_id,
                       [district_id], {"sold_by": before.get("sold_by", [])}, {"sold_by": sellers})
    await changed(*freshness.of_merchant(merchant_id, district_id))
    return Product.from_doc(after)


async def create(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str, data: ProductInput) -> Product:
    district_id = await _merchant_district(db, merchant_id)
    authz.merchant_only(actor, merchant_id, "products")
    doc = {"_id": f"{merchant_id[:40]}-{uuid.uuid4().hex[:8]}", **_validate(data), "sold_by": [merchant_id],
           "owner_merchant_id": merchant_id, "version": 1, "origin": "backoffice", "created_at": datetime.now(UTC)}
    await repository.insert_product(db, doc)
    await audit.record(db, actor, "product.create", "product", doc["_id"], [district_id], None, doc)
    await changed(*freshness.of_merchant(merchant_id, district_id))
    return Product.from_doc(doc)


async def _editable(db: AsyncDatabase[Doc], actor: Actor, product_id: str) -> tuple[Doc, str | None]:
    """A product and the shop that created it, for who may edit it: that shop (or an admin); a shared city
    specialty (no shop), admins only."""
    doc = await repository.product_doc(db, product_id)
    if doc is None:
        raise NotFound(f"no product {product_id!r}")
    owner = doc.get("owner_merchant_id")
    if owner:
        authz.merchant_only(actor, owner, "products")
    else:
        authz.admin(actor, "products")
    return doc, owner


async def update(db: AsyncDatabase[Doc], actor: Actor, product_id: str, data: ProductInput, version: int) -> Product:
    """A merchant edits the products it created; shared city specialties are edited by admins."""
    before, owner = await _editable(db, actor, product_id)
    fields = _validate(data)
    after = await repository.save_product(db, before, version, fields)
    districts = [await _merchant_district(db, owner)] if owner else []
    await audit.record(db, actor, "product.update", "product", product_id, districts, before, after)
    await changed(freshness.PRODUCTS, freshness.ANY_WRITE)  # its name shows wherever it is sold
    return Product.from_doc(after)


async def for_merchant(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str) -> list[tuple[Product, bool]]:
    """Every specialty with whether this shop created it, for the shop's back office (read only)."""
    await _merchant_district(db, merchant_id)
    authz.merchant_only(actor, merchant_id, "products")
    return [(product, owner == merchant_id) for product, owner in await repository.all_with_owners(db)]


async def get_for_edit(db: AsyncDatabase[Doc], actor: Actor, product_id: str) -> tuple[Product, int, str | None]:
    """A product with its version and owning shop, for whoever may `update` it (read only)."""
    doc, owner = await _editable(db, actor, product_id)
    return Product.from_doc(doc), int(doc.get("version") or 0), owner
