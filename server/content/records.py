"""Turn validated content records into MongoDB documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from typing import Any

from server.content.validate import ContentError, Record
from server.domain.festivals.models import KINDS as FESTIVAL_KINDS
from server.domain.festivals.models import window
from server.domain.geo import Point, point_in_polygon
from server.domain.merchants.derived import derived_fields
from server.domain.merchants.holiday_hours import parse_exceptions
from server.domain.merchants.hours import DAYS, HoursError, Span, parse_week
from server.domain.offers.models import KINDS as OFFER_KINDS
from server.domain.offers.models import until_key
from server.domain.products.models import CATEGORIES as PRODUCT_CATEGORIES
from server.domain.search.terms import index_terms

Doc = dict[str, Any]


def _texts(*localized: dict[str, str]) -> list[str]:
    return [text for texts in localized for text in texts.values()]


def _geo(lat: float, lng: float) -> Doc:
    return {"type": "Point", "coordinates": [lng, lat]}


def category(r: Record, sort: int) -> Doc:
    return {"_id": r.slug(), "name": r.localized("name"), "sort": sort}


def district(r: Record, sort: int) -> tuple[Doc, list[Doc]]:
    did = r.slug()
    assert did is not None
    lat, lng = r.point("center")
    ring = r.raw("boundary")
    if (not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]
            or not all(isinstance(p, list) and len(p) == 2 for p in ring)):
        raise r.fail("boundary", "must be a closed ring of at least 4 [lng, lat] points")
    if not point_in_polygon(Point(lat, lng), ring):
        raise r.fail("center", "lies outside the boundary")
    name, description = r.localized("name"), r.localized("description", required=False)
    areas_raw = r.raw("areas")
    if not isinstance(areas_raw, list) or not areas_raw:
        raise r.fail("areas", "must list at least one area")
    areas: list[Doc] = []
    area_names: list[dict[str, str]] = []
    for index, raw in enumerate(areas_raw):
        if not isinstance(raw, dict):
            raise r.fail(f"areas[{index}]", "must be a mapping")
        a = Record(r.file, f"{did}/areas[{index}] ({raw.get('id', '?')})", raw)
        alat, alng = a.point("center")
        if not point_in_polygon(Point(alat, alng), ring):
            raise a.fail("center", f"lies outside the boundary of district {did}")
        area_name = a.localized("name")
        area_names.append(area_name)
        areas.append({
            "_id": a.slug(), "district_id": did, "name": area_name, "center": _geo(alat, alng),
            "capacity": a.integer("capacity", 1, 2_000_000), "sort": index, "version": 0,
            "search_terms": index_terms(_texts(area_name)),
        })
    doc = {
        "_id": did, "name": name, "description": description, "center": _geo(lat, lng),
        "boundary": {"type": "Polygon", "coordinates": [ring]}, "sort": sort,
        "search_terms": index_terms([*_texts(name, *area_names), *_texts(description)]),
    }
    return doc, areas


@dataclass(slots=True)
class MerchantDraft:
    """A validated merchant without its derived fields (search terms, open hours, geo keys) yet: deriving
    is most of a merchant's CPU, so the loader derives in batches while the database writes the last one."""

    doc: Doc
    location: Point
    spans: list[Span]
    exceptions: dict[date, tuple[Span, ...]]
    content_hash: str = ""  # of what the document is derived from (content/files.py)

    def __reduce__(self) -> tuple[type[MerchantDraft], tuple[Any, ...]]:
        # sent back by a reading worker process: see Record.__reduce__
        return MerchantDraft, (self.doc, self.location, self.spans, self.exceptions, self.content_hash)

    def derive(self) -> Doc:
        d = self.doc
        d.update(derived_fields(d["name"], d["description"], d["address"], d["categories"], self.location,
                                self.spans, self.exceptions))
        return d


def merchant_draft(r: Record, district_doc: Doc, area_ids: set[str], category_ids: set[str]) -> MerchantDraft:
    mid = r.slug()
    area_id = r.slug("area")
    if area_id not in area_ids:
        raise r.fail("area", f"{area_id!r} is not an area of district {district_doc['_id']}")
    lat, lng = r.point("location")
    if not point_in_polygon(Point(lat, lng), district_doc["boundary"]["coordinates"][0]):
        raise r.fail("location", f"lies outside district {district_doc['_id']}")
    categories = r.slugs("categories", max_items=5)
    for cat in categories:
        if cat not in category_ids:
            raise r.fail("categories", f"unknown category {cat!r}")
    hours = r.raw("hours")
    if not isinstance(hours, dict) or not all(isinstance(v, list | None) for v in hours.values()):
        raise r.fail("hours", f"must map {', '.join(DAYS)} to lists of HH:MM-HH:MM")
    try:
        spans = parse_week(hours)
    except HoursError as exc:
        raise r.fail("hours", str(exc)) from exc
    raw_exceptions = r.raw("hours_exceptions", required=False) or {}
    if not isinstance(raw_exceptions, dict) or not all(isinstance(v, list) for v in raw_exceptions.values()):
        raise r.fail("hours_exceptions", "must map dates (YYYY-MM-DD) to lists of HH:MM-HH:MM ([] = closed)")
    try:
        exceptions = parse_exceptions({str(k): v for k, v in raw_exceptions.items()})
    except HoursError as exc:
        raise r.fail("hours_exceptions", str(exc)) from exc
    phone = r.text("phone", max_len=30)
    assert phone is not None
    if not all(c.isdigit() or c in "+ -()" for c in phone):
        raise r.fail("phone", "may hold digits, spaces, +, - and brackets only")
    name, description = r.localized("name"), r.localized("description", required=False)
    address = r.localized("address", required=False)
    doc = {
        "_id": mid, "key": mid, "district_id": district_doc["_id"], "area_id": area_id, "name": name,
        "description": description, "address": address, "categories": categories, "phone": phone,
        "price_level": r.integer("price_level", 1, 4), "hours": {day: list(hours.get(day) or []) for day in DAYS},
        "status": "published", "version": 0,
    }
    return MerchantDraft(doc, Point(lat, lng), spans, exceptions)


def product(r: Record, merchant_ids: set[str]) -> Doc:
    low, high = r.raw("price"), None
    if not isinstance(low, dict):
        raise r.fail("price", "must be {min_fen: …, max_fen: …}")
    price = Record(r.file, r.label, low)
    low, high = price.integer("min_fen", 0, 10**9), price.integer("max_fen", 0, 10**9)
    assert low is not None and high is not None
    if low > high:
        raise r.fail("price.max_fen", "must not be below min_fen")
    sold_by = r.slugs("sold_by")
    for mid in sold_by:
        if mid not in merchant_ids:
            raise r.fail("sold_by", f"unknown merchant {mid!r}")
    name, story = r.localized("name"), r.localized("story")
    return {
        "_id": r.slug(), "name": name, "story": story, "category": r.choice("category", PRODUCT_CATEGORIES),
        "price_min_fen": low, "price_max_fen": high, "unit": r.localized("unit", required=False),
        "sold_by": sold_by, "search_terms": index_terms([*_texts(name), *_texts(story)]), "version": 0,
    }


def festival(r: Record, district_ids: set[str]) -> Doc:
    starts_on, ends_on = r.day("starts_on"), r.day("ends_on")
    if ends_on < starts_on:
        raise r.fail("ends_on", "is before starts_on")
    districts = r.slugs("districts")
    for did in districts:
        if did not in district_ids:
            raise r.fail("districts", f"unknown district {did!r}")
    starts_at, ends_at = window(starts_on, ends_on)
    return {
        "_id": r.slug(), "name": r.localized("name"), "description": r.localized("description", required=False),
        "kind": r.choice("kind", FESTIVAL_KINDS), "starts_on": starts_on.isoformat(),
        "ends_on": ends_on.isoformat(), "starts_at": starts_at, "ends_at": ends_at, "district_ids": districts,
        "version": 0,
    }


def offer(r: Record, merchants: dict[str, Doc], festivals: dict[str, Doc]) -> Doc:
    merchant_id = r.slug("merchant")
    if merchant_id not in merchants:
        raise r.fail("merchant", f"unknown merchant {merchant_id!r}")
    district_id = merchants[merchant_id]["district_id"]
    festival_id = r.slug("festival", required=False)
    if festival_id is not None:
        if festival_id not in festivals:
            raise r.fail("festival", f"unknown festival {festival_id!r}")
        if district_id not in festivals[festival_id]["district_ids"]:
            raise r.fail("festival", f"festival {festival_id!r} does not run in district {district_id!r}")
    kind = r.choice("kind", OFFER_KINDS)
    percent = r.integer("percent_off", 1, 90, required=kind == "percent_off")
    amount = r.integer("amount_off_fen", 1, 10**8, required=kind == "amount_off")
    if kind != "percent_off" and percent is not None:
        raise r.fail("percent_off", "only goes with kind percent_off")
    if kind != "amount_off" and amount is not None:
        raise r.fail("amount_off_fen", "only goes with kind amount_off")
    code = r.text("coupon_code", required=False, max_len=20)
    if code is not None and not all(c.isupper() or c.isdigit() or c == "-" for c in code):
        raise r.fail("coupon_code", "use capital letters, digits and -")
    valid_from, valid_until = r.moment("valid_from"), r.moment("valid_until")
    if valid_until <= valid_from:
        raise r.fail("valid_until", "must be after valid_from")
    offer_id = r.slug()
    assert offer_id is not None  # required
    return {
        "_id": offer_id, "merchant_id": merchant_id, "district_id": district_id, "festival_id": festival_id,
        "title": r.localized("title", max_len=120), "description": r.localized("description", required=False),
        "kind": kind, "percent_off": percent, "amount_off_fen": amount,
        "min_spend_fen": r.integer("min_spend_fen", 0, 10**9, required=False), "coupon_code": code,
        "valid_from": valid_from.astimezone(UTC), "valid_until": valid_until.astimezone(UTC),
        "until_key": until_key(valid_until, offer_id),
        "stock": r.integer("stock", 0, 10**7, required=False), "status": "published", "version": 0,
    }


__all__ = ["ContentError", "MerchantDraft", "category", "district", "festival", "merchant_draft", "offer",
           "product"]
