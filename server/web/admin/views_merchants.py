"""A shop's profile (hours and holiday hours included), new shops, and the list of shops."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.categories.repository import list_categories
from server.domain.districts.repository import areas_by_district, districts_by_ids
from server.domain.errors import Conflict, Invalid, NotFound
from server.domain.merchants import service as merchants
from server.domain.merchants.holiday_hours import MAX_EXCEPTIONS
from server.domain.merchants.hours import DAYS
from server.domain.merchants.models import Merchant
from server.web.admin.common import (
    Values,
    db_of,
    form_list,
    form_str,
    form_version,
    locale_of,
    localized_input,
    localized_values,
    page,
    posted,
    render,
    see_other,
    signed_in,
)
from server.web.admin.views_images import pictures_context

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
    categories = await list_categories(db)
    areas = (await areas_by_district(db, [district_id])).get(district_id, [])
    district = (await districts_by_ids(db, [district_id])).get(district_id)
    merchant = context.get("merchant")
    pictures = await pictures_context(request, await signed_in(request), "merchant", merchant.id if merchant else None)
    return render(request, "profile.html", {"categories": categories, "areas": areas, "district": district,
                                            "days": DAYS, "conflict": None, "merchant": None, **pictures,
                                            **context}, status_code)


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
