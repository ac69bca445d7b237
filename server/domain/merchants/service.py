"""Merchant profile writes: the merchant itself, an operator of its district, or an admin."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.categories import repository as categories
from server.domain.districts import repository as districts
from server.domain.errors import NotFound
from server.domain.forms import Problems
from server.domain.geo import Point, point_in_polygon, valid_coordinates
from server.domain.merchants import counts, postings, repository
from server.domain.merchants.derived import derived_fields
from server.domain.merchants.holiday_hours import parse_exceptions
from server.domain.merchants.hours import DAYS, HoursError, parse_week
from server.domain.merchants.models import Merchant
from server.services.mongo import Doc
from server.services.public_cache import changed

PHONE = re.compile(r"^[0-9+\- ()]{5,30}$")



@dataclass(slots=True)
class ProfileInput:
    name: dict[str, str] = field(default_factory=dict)
    description: dict[str, str] = field(default_factory=dict)
    address: dict[str, str] = field(default_factory=dict)
    phone: str = ""
    categories: list[str] = field(default_factory=list)
    price_level: Any = None
    hours: dict[str, list[str]] = field(default_factory=dict)
    lat: Any = None
    lng: Any = None
    area_id: str = ""
    exceptions: dict[str, list[str]] = field(default_factory=dict)  # "2027-02-06": [] is closed that day


async def _validate(db: AsyncDatabase[Doc], data: ProfileInput, district_id: str) -> dict[str, Any]:
    p = Problems()
    name = p.localized("name", data.name, required=True, max_len=80)
    description = p.localized("description", data.description, required=False, max_len=2000)
    address = p.localized("address", data.address, required=False, max_len=200)
    phone = data.phone.strip()
    if not PHONE.match(phone):
        p.add("phone", "phone_format")
    known = await categories.existing_ids(db, data.categories)
    if not data.categories or len(data.categories) > 5 or set(data.categories) - known:
        p.add("categories", "categories_invalid")
    price_level = p.integer("price_level", data.price_level, 1, 4, required=True)
    spans = []
    try:
        spans = parse_week({day: [s.strip() for s in data.hours.get(day, []) if s.strip()] for day in DAYS})
    except HoursError:
        p.add("hours", "hours_format")
    exceptions = {}
    try:
        exceptions = parse_exceptions({d.strip(): [s.strip() for s in v if s.strip()]
                                       for d, v in data.exceptions.items() if d.strip()})
        today = datetime.now(UTC).date()
        if any(not today - timedelta(days=366) <= d <= today + timedelta(days=2 * 366) for d in exceptions):
            p.add("exceptions", "out_of_range")
    except HoursError:
        p.add("exceptions", "hours_format")
    lat = lng = 0.0
    try:
        lat, lng = float(data.lat), float(data.lng)
        if not valid_coordinates(lat, lng):
            raise ValueError
    except (TypeError, ValueError):
        p.add("location", "coordinates_invalid")
    boundary = await districts.district_boundary(db, district_id)
    if "location" not in p.fields and boundary and not point_in_polygon(Point(lat, lng), boundary):
        p.add("location", "outside_district")
    if not await districts.area_in_district(db, data.area_id, district_id):
        p.add("area_id", "unknown_area")
    p.raise_if_any()
    hours = {day: [s.strip() for s in data.hours.get(day, []) if s.strip()] for day in DAYS}
    return {"name": name, "description": description, "address": address, "phone": phone,
            "categories": list(dict.fromkeys(data.categories)), "price_level": price_level, "hours": hours,
            "area_id": data.area_id,
            **derived_fields(name, description, address, data.categories, Point(lat, lng), spans, exceptions)}


async def get_for_edit(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str) -> tuple[Merchant, int]:
    doc = await repository.merchant_doc(db, merchant_id)
    if doc is None:
        raise NotFound(f"no merchant {merchant_id!r}")
    authz.merchant_owner(actor, merchant_id, doc["district_id"], "profile")
    return Merchant.from_doc(doc), int(doc.get("version") or 0)


async def update_profile(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str, data: ProfileInput,
                         version: int) -> Merchant:
    before = await repository.merchant_doc(db, merchant_id)
    if before is None:
        raise NotFound(f"no merchant {merchant_id!r}")
    authz.merchant_owner(actor, merchant_id, before["district_id"], "profile")
    fields = await _validate(db, data, before["district_id"])
    tiers = postings.take_tiers(fields)
    after = await repository.save_merchant(db, {k: v for k, v in before.items() if k not in postings.TIER_FIELDS},
                                           version, fields)
    await counts.apply(db, before, after)
    await postings.apply(db, postings.Entry.of(before), postings.Entry.of(after, tiers),
                         lambda: repository.merchant_doc(db, merchant_id))
    await audit.record(db, actor, "merchant.update", "merchant", merchant_id, [before["district_id"]], before, after)
    await changed(*freshness.of_merchant(merchant_id, before["district_id"]))  # hours and open-now too
    return Merchant.from_doc(after)


async def create(db: AsyncDatabase[Doc], actor: Actor, district_id: str, data: ProfileInput) -> Merchant:
    """Operators list a new shop in their district (and then invite its owner)."""
    authz.district_operator(actor, [district_id], "districts")
    fields = await _validate(db, data, district_id)
    tiers = postings.take_tiers(fields)
    merchant_id = f"{district_id[:20]}-{uuid.uuid4().hex[:10]}"
    doc = {"_id": merchant_id, "key": merchant_id, "district_id": district_id, **fields,
           "status": "published", "version": 1, "origin": "backoffice", "created_at": datetime.now(UTC)}
    await repository.insert_merchant(db, doc)
    await counts.apply(db, None, doc)
    await postings.apply(db, None, postings.Entry.of(doc, tiers), lambda: repository.merchant_doc(db, merchant_id))
    await audit.record(db, actor, "merchant.create", "merchant", doc["_id"], [district_id], None, doc)
    await changed(*freshness.of_merchant(doc["_id"], district_id))
    return Merchant.from_doc(doc)


async def of_actor(db: AsyncDatabase[Doc], actor: Actor) -> list[Merchant]:
    """The shops an account may manage."""
    authz.require_scope(actor, "profile")
    if actor.is_admin:
        return await repository.merchants_where(db)
    if actor.role == "operator":
        return await repository.merchants_where(db, district_ids=sorted(actor.district_ids))
    return await repository.merchants_where(db, merchant_ids=sorted(actor.merchant_ids))
