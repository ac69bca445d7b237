"""What a shop manages: its profile, its offers (draft → published → withdrawn) and its 深圳手信."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.actor import Actor
from server.domain.districts.repository import areas_by_district, districts_by_ids
from server.domain.errors import Conflict, Invalid, NotFound
from server.domain.festivals.repository import by_ids as festivals_by_ids
from server.domain.festivals.repository import list_festivals
from server.domain.merchants import service as merchants
from server.domain.merchants.holiday_hours import MAX_EXCEPTIONS
from server.domain.merchants.hours import DAYS
from server.domain.merchants.models import Merchant
from server.domain.offers import service as offers
from server.domain.offers.models import KINDS, Offer
from server.domain.products import service as products
from server.domain.products.models import CATEGORIES as PRODUCT_CATEGORIES
from server.domain.products.models import Product
from server.web.admin.common import (
    Values,
    db_of,
    form_list,
    form_str,
    form_version,
    local_input,
    locale_of,
    localized_input,
    localized_values,
    page,
    parse_local,
    posted,
    render,
    see_other,
    signed_in,
)

# ---------------------------------------------------------------- merchant profile

_SPAN_SEPARATORS = re.compile(r"[,，;；、]")
_NORMALIZE = str.maketrans({"：": ":", "–": "-", "—": "-", "~": "-", "～": "-", "－": "-", " ": ""})


def hours_text(spans: list[str]) -> str:
    return ", ".join(spans)


def parse_hours(text: str) -> list[str]:
    """"10:00-22:00, 23:00-02:00" (full-width punctuation and dashes accepted) → spans."""
    return [part.translate(_NORMALIZE) for part in _SPAN_SEPARATORS.split(text) if part.strip()][:6]


# ---------------------------------------------------------------- holiday exceptions, one line a date

CLOSED_WORDS = {"zh-CN": "休息", "zh-HK": "休業", "en": "closed"}
_CLOSED = {"休息", "休業", "休业", "closed"}
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
# A span no schedule accepts: a line the form couldn't read is passed on as it, so the service refuses the
# whole save (and reports every other field's problems at once) instead of storing the lines it could read.
UNREADABLE = "?"
EXCEPTIONS_LIMIT = 8000  # characters: room for MAX_EXCEPTIONS long lines


def exceptions_text(exceptions: Mapping[date, tuple[Any, ...]], locale: str) -> str:
    """"2027-02-06 休息\n2027-02-10 10:00-14:00, 18:00-22:00" from the stored exceptions."""
    closed = CLOSED_WORDS.get(locale, CLOSED_WORDS["en"])
    return "\n".join(f"{day.isoformat()} {hours_text([s.label() for s in spans]) if spans else closed}"
                     for day, spans in sorted(exceptions.items()))


def parse_exceptions(text: str) -> tuple[dict[str, list[str]], str | None]:
    """Lines "2027-02-06 休息" / "2027-02-10 10:00-14:00, 18:00-22:00" → {date: spans}, and the web layer's
    own problem with them (an unreadable date, a line without hours, a date given twice), if any."""
    out: dict[str, list[str]] = {}
    problems: set[str] = set()
    if len(text) > EXCEPTIONS_LIMIT:
        return {UNREADABLE: []}, "too_long"  # not a date: the service refuses it too
    lines = [line for line in (unicodedata.normalize("NFKC", raw).strip() for raw in text.splitlines()) if line]
    for line in lines[: MAX_EXCEPTIONS + 1]:  # (NFKC: full-width digits, colons and commas become ASCII)
        match = _DATE.match(line)
        if match:
            year, month, day_of_month = match.groups()
            token, rest = f"{year}-{month:0>2}-{day_of_month:0>2}", line[match.end():]
        else:
            token, _, rest = line.partition(" ")
        try:
            day = date.fromisoformat(token).isoformat()
        except ValueError:
            day = token  # the service reads dates with the same function: it refuses this one too
            problems.add("bad_date")
        rest = rest.strip().lstrip(":").strip()
        if rest.lower() in _CLOSED:
            spans: list[str] = []
        else:
            spans = parse_hours(rest)
            if not spans:
                problems.add("exceptions_format")
                spans = [UNREADABLE]
        if day in out:
            problems.add("exceptions_format")
            spans = [UNREADABLE]
        out[day] = spans
    if len(out) > MAX_EXCEPTIONS:
        problems.add("exceptions_too_many")
    for key in ("bad_date", "exceptions_too_many", "exceptions_format"):
        if key in problems:
            return out, key
    return out, None


def profile_errors(fields: dict[str, str], problem: str | None) -> dict[str, str]:
    """The service's problems, with the web layer's more precise word on the exceptions field."""
    errors = dict(fields)
    if errors.get("exceptions") == "out_of_range":
        errors["exceptions"] = "exceptions_out_of_range"
    if problem:
        errors["exceptions"] = problem
    return errors


def profile_values(merchant: Merchant, version: int, locale: str) -> Values:
    return Values({
        **localized_values("name", merchant.name), **localized_values("description", merchant.description),
        **localized_values("address", merchant.address), "phone": merchant.phone,
        "categories": merchant.categories, "price_level": merchant.price_level or None,
        **{f"hours.{day}": hours_text(merchant.hours.get(day, [])) for day in DAYS},
        "exceptions": exceptions_text(merchant.exceptions, locale),
        "lat": merchant.location.lat, "lng": merchant.location.lng, "area_id": merchant.area_id,
        "version": version,
    })


def profile_input(form: FormData) -> tuple[merchants.ProfileInput, str | None]:
    """The service's input, and the web layer's problem with the exceptions field (see parse_exceptions)."""
    exceptions, problem = parse_exceptions(form_str(form, "exceptions", EXCEPTIONS_LIMIT + 1))
    data = merchants.ProfileInput(
        name=localized_input(form, "name", 500), description=localized_input(form, "description"),
        address=localized_input(form, "address", 1000), phone=form_str(form, "phone", 100),
        categories=form_list(form, "categories")[:20], price_level=form_str(form, "price_level", 20),
        hours={day: parse_hours(form_str(form, f"hours.{day}", 300)) for day in DAYS},
        lat=form_str(form, "lat", 40) or None, lng=form_str(form, "lng", 40) or None,
        area_id=form_str(form, "area_id", 100), exceptions=exceptions,
    )
    return data, problem


async def _profile_page(request: Request, district_id: str, context: dict[str, Any],
                        status_code: int = 200) -> Response:
    db = db_of(request)
    categories = [d async for d in db.categories.find({}, {"name": 1}).sort([("sort", 1), ("_id", 1)])]
    areas = (await areas_by_district(db, [district_id])).get(district_id, [])
    district = (await districts_by_ids(db, [district_id])).get(district_id)
    return render(request, "profile.html", {"categories": categories, "areas": areas, "district": district,
                                            "days": DAYS, "conflict": None, "merchant": None, **context},
                  status_code)


@page
async def profile_form(request: Request) -> Response:
    actor = await signed_in(request)
    merchant, version = await merchants.get_for_edit(db_of(request), actor, request.path_params["merchant_id"])
    return await _profile_page(request, merchant.district_id, {
        "merchant": merchant, "values": profile_values(merchant, version, locale_of(request))})


@page
async def profile_save(request: Request) -> Response:
    actor, form = await posted(request)
    merchant_id = request.path_params["merchant_id"]
    db = db_of(request)
    data, problem = profile_input(form)
    try:
        await merchants.update_profile(db, actor, merchant_id, data, form_version(form))
    except Invalid as exc:
        merchant, _ = await merchants.get_for_edit(db, actor, merchant_id)
        return await _profile_page(request, merchant.district_id, {
            "merchant": merchant, "values": Values.of_form(form), "errors": profile_errors(exc.fields, problem)},
            422)
    except Conflict as exc:
        merchant, _ = await merchants.get_for_edit(db, actor, merchant_id)
        values = Values.of_form(form)
        values.set("version", str(exc.current.get("version") or 0))
        return await _profile_page(request, merchant.district_id, {
            "merchant": merchant, "values": values, "conflict": exc.current}, 409)
    return see_other(f"/admin/merchants/{merchant_id}?ok=saved")


@page
async def new_merchant_form(request: Request) -> Response:
    actor = await signed_in(request)
    district_id = request.path_params["district_id"]
    if not await districts_by_ids(db_of(request), [district_id]):
        raise NotFound(district_id)
    authz.district_operator(actor, [district_id], "districts")
    return await _profile_page(request, district_id, {"values": Values({"price_level": "2"})})


@page
async def new_merchant(request: Request) -> Response:
    actor, form = await posted(request)
    district_id = request.path_params["district_id"]
    data, problem = profile_input(form)
    try:
        created = await merchants.create(db_of(request), actor, district_id, data)
    except Invalid as exc:
        return await _profile_page(request, district_id, {"values": Values.of_form(form),
                                                          "errors": profile_errors(exc.fields, problem)}, 422)
    return see_other(f"/admin/merchants/{created.id}?ok=created")


@page
async def merchant_list(request: Request) -> Response:
    actor = await signed_in(request)
    db = db_of(request)
    shops = await merchants.of_actor(db, actor)
    wanted = request.query_params.get("district", "")
    if wanted:
        shops = [m for m in shops if m.district_id == wanted]
    districts = await districts_by_ids(db, sorted({m.district_id for m in shops} | ({wanted} - {""})))
    groups: dict[str, list[Merchant]] = {}
    for shop in shops:
        groups.setdefault(shop.district_id, []).append(shop)
    return render(request, "merchants.html", {"groups": groups, "districts": districts, "district": wanted})


# ---------------------------------------------------------------- offers

def offer_values(offer: Offer | None) -> Values:
    if offer is None:  # a new offer: from now for a week
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        return Values({"kind": "percent_off", "valid_from": local_input(now),
                       "valid_until": local_input(now + timedelta(days=7))})
    return Values({
        **localized_values("title", offer.title), **localized_values("description", offer.description),
        "kind": offer.kind, "percent_off": offer.percent_off, "amount_off_fen": offer.amount_off_fen,
        "min_spend_fen": offer.min_spend_fen, "coupon_code": offer.coupon_code,
        "valid_from": local_input(offer.valid_from), "valid_until": local_input(offer.valid_until),
        "stock": offer.stock, "festival_id": offer.festival_id, "version": offer.version,
    })


def offer_input(form: FormData) -> tuple[offers.OfferInput, dict[str, str]]:
    """The service's input, and problems only the web layer can see (an unreadable date)."""
    problems: dict[str, str] = {}
    moments: dict[str, datetime | None] = {}
    for name in ("valid_from", "valid_until"):
        moments[name], problem = parse_local(form_str(form, name, 40))
        if problem:
            problems[name] = problem
    data = offers.OfferInput(
        title=localized_input(form, "title", 500), description=localized_input(form, "description"),
        kind=form_str(form, "kind", 40), percent_off=form_str(form, "percent_off", 40),
        amount_off_fen=form_str(form, "amount_off_fen", 40), min_spend_fen=form_str(form, "min_spend_fen", 40),
        coupon_code=form_str(form, "coupon_code", 100) or None, valid_from=moments["valid_from"],
        valid_until=moments["valid_until"], stock=form_str(form, "stock", 40),
        festival_id=form_str(form, "festival_id", 100) or None,
    )
    return data, problems


async def _offer_page(request: Request, merchant: Merchant, context: dict[str, Any],
                      status_code: int = 200) -> Response:
    festivals = await list_festivals(db_of(request), None, datetime.now(UTC), merchant.district_id)
    return render(request, "offer.html", {"merchant": merchant, "festivals": festivals, "kinds": KINDS,
                                          "offer": None, "conflict": None, **context}, status_code)


@page
async def offer_list(request: Request) -> Response:
    actor = await signed_in(request)
    db = db_of(request)
    merchant, _ = await merchants.get_for_edit(db, actor, request.path_params["merchant_id"])
    found = await offers.of_merchant(db, actor, merchant.id)
    festivals = await festivals_by_ids(db, sorted({o.festival_id for o in found if o.festival_id}))
    return render(request, "offers.html", {"merchant": merchant, "offers": found, "festivals": festivals})


@page
async def new_offer_form(request: Request) -> Response:
    actor = await signed_in(request)
    merchant, _ = await merchants.get_for_edit(db_of(request), actor, request.path_params["merchant_id"])
    authz.merchant_only(actor, merchant.id, "offers")  # only the shop itself (or an admin) may create one
    return await _offer_page(request, merchant, {"values": offer_values(None)})


@page
async def new_offer(request: Request) -> Response:
    actor, form = await posted(request)
    db = db_of(request)
    merchant_id = request.path_params["merchant_id"]
    data, problems = offer_input(form)
    try:
        await offers.create(db, actor, merchant_id, data)
    except Invalid as exc:
        merchant, _ = await merchants.get_for_edit(db, actor, merchant_id)
        return await _offer_page(request, merchant, {"values": Values.of_form(form),
                                                     "errors": {**exc.fields, **problems}}, 422)
    return see_other(f"/admin/merchants/{merchant_id}/offers?ok=created")


async def _merchant_of(request: Request, actor: Actor, offer: Offer) -> Merchant:
    merchant, _ = await merchants.get_for_edit(db_of(request), actor, offer.merchant_id)
    return merchant


@page
async def offer_form(request: Request) -> Response:
    actor = await signed_in(request)
    offer = await offers.get_for_edit(db_of(request), actor, request.path_params["offer_id"])
    return await _offer_page(request, await _merchant_of(request, actor, offer),
                             {"offer": offer, "values": offer_values(offer)})


@page
async def offer_save(request: Request) -> Response:
    actor, form = await posted(request)
    db = db_of(request)
    offer_id = request.path_params["offer_id"]
    data, problems = offer_input(form)
    try:
        saved = await offers.update(db, actor, offer_id, data, form_version(form))
    except Invalid as exc:
        offer = await offers.get_for_edit(db, actor, offer_id)
        return await _offer_page(request, await _merchant_of(request, actor, offer), {
            "offer": offer, "values": Values.of_form(form), "errors": {**exc.fields, **problems}}, 422)
    except Conflict as exc:
        offer = await offers.get_for_edit(db, actor, offer_id)
        values = Values.of_form(form)
        values.set("version", str(offer.version))
        return await _offer_page(request, await _merchant_of(request, actor, offer), {
            "offer": offer, "values": values, "conflict": exc.current}, 409)
    return see_other(f"/admin/merchants/{saved.merchant_id}/offers?ok=saved")


async def _transition(request: Request, action: str) -> Response:
    actor, form = await posted(request)
    offer = await offers.transition(db_of(request), actor, request.path_params["offer_id"], action,
                                    form_version(form))
    return see_other(f"/admin/merchants/{offer.merchant_id}/offers?ok={offer.status}")


@page
async def publish_offer(request: Request) -> Response:
    return await _transition(request, "publish")


@page
async def withdraw_offer(request: Request) -> Response:
    return await _transition(request, "withdraw")


# ---------------------------------------------------------------- 深圳手信

def product_values(product: Product | None, version: int = 0) -> Values:
    if product is None:
        return Values({"category": "food"})
    return Values({
        **localized_values("name", product.name), **localized_values("story", product.story),
        **localized_values("unit", product.unit), "category": product.category,
        "price_min_fen": product.price_min_fen, "price_max_fen": product.price_max_fen, "version": version,
    })


def product_input(form: FormData) -> products.ProductInput:
    return products.ProductInput(
        name=localized_input(form, "name", 500), story=localized_input(form, "story"),
        unit=localized_input(form, "unit", 200), category=form_str(form, "category", 40),
        price_min_fen=form_str(form, "price_min_fen", 40), price_max_fen=form_str(form, "price_max_fen", 40),
    )


def _product_page(request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
    return render(request, "product.html", {"categories": PRODUCT_CATEGORIES, "product": None, "conflict": None,
                                            "merchant_id": None, **context}, status_code)


@page
async def product_list(request: Request) -> Response:
    actor = await signed_in(request)
    db = db_of(request)
    merchant, _ = await merchants.get_for_edit(db, actor, request.path_params["merchant_id"])
    found = await products.for_merchant(db, actor, merchant.id)
    return render(request, "products.html", {"merchant": merchant, "products": found})


@page
async def set_sold_here(request: Request) -> Response:
    actor, form = await posted(request)
    merchant_id = request.path_params["merchant_id"]
    sold = form_str(form, "sold", 5) == "1"
    await products.set_sold_here(db_of(request), actor, merchant_id, request.path_params["product_id"], sold)
    return see_other(f"/admin/merchants/{merchant_id}/products?ok=saved")


@page
async def new_product_form(request: Request) -> Response:
    actor = await signed_in(request)
    merchant, _ = await merchants.get_for_edit(db_of(request), actor, request.path_params["merchant_id"])
    authz.merchant_only(actor, merchant.id, "products")
    return _product_page(request, {"merchant_id": merchant.id, "values": product_values(None)})


@page
async def new_product(request: Request) -> Response:
    actor, form = await posted(request)
    merchant_id = request.path_params["merchant_id"]
    try:
        await products.create(db_of(request), actor, merchant_id, product_input(form))
    except Invalid as exc:
        return _product_page(request, {"merchant_id": merchant_id, "values": Values.of_form(form),
                                       "errors": exc.fields}, 422)
    return see_other(f"/admin/merchants/{merchant_id}/products?ok=created")


@page
async def product_form(request: Request) -> Response:
    actor = await signed_in(request)
    product, version, owner = await products.get_for_edit(db_of(request), actor, request.path_params["product_id"])
    return _product_page(request, {"product": product, "merchant_id": owner,
                                   "values": product_values(product, version)})


@page
async def product_save(request: Request) -> Response:
    actor, form = await posted(request)
    db = db_of(request)
    product_id = request.path_params["product_id"]
    try:
        await products.update(db, actor, product_id, product_input(form), form_version(form))
    except Invalid as exc:
        product, _, owner = await products.get_for_edit(db, actor, product_id)
        return _product_page(request, {"product": product, "merchant_id": owner, "values": Values.of_form(form),
                                       "errors": exc.fields}, 422)
    except Conflict as exc:
        product, version, owner = await products.get_for_edit(db, actor, product_id)
        values = Values.of_form(form)
        values.set("version", str(version))
        return _product_page(request, {"product": product, "merchant_id": owner, "values": values,
                                       "conflict": exc.current}, 409)
    _, _, owner = await products.get_for_edit(db, actor, product_id)
    return see_other(f"/admin/merchants/{owner}/products?ok=saved" if owner else "/admin/?ok=saved")
