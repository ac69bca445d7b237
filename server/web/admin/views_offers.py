"""A shop's offers: draft → published → withdrawn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.actor import Actor
from server.domain.errors import Conflict, Invalid
from server.domain.festivals.repository import by_ids as festivals_by_ids
from server.domain.festivals.repository import list_festivals
from server.domain.merchants import service as merchants
from server.domain.merchants.models import Merchant
from server.domain.offers import service as offers
from server.domain.offers.models import KINDS, Offer
from server.web.admin.common import (
    Values,
    db_of,
    form_str,
    form_version,
    local_input,
    localized_input,
    localized_values,
    page,
    parse_local,
    posted,
    render,
    see_other,
    signed_in,
)
from server.web.admin.money import as_yuan, to_fen, to_yuan


def offer_values(offer: Offer | None) -> Values:
    if offer is None:  # a new offer: from now for a week
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        return Values({"kind": "percent_off", "valid_from": local_input(now),
                       "valid_until": local_input(now + timedelta(days=7))})
    return Values({
        **localized_values("title", offer.title), **localized_values("description", offer.description),
        "kind": offer.kind, "percent_off": offer.percent_off, "amount_off_yuan": to_yuan(offer.amount_off_fen),
        "min_spend_yuan": to_yuan(offer.min_spend_fen), "coupon_code": offer.coupon_code,
        "valid_from": local_input(offer.valid_from), "valid_until": local_input(offer.valid_until),
        "stock": offer.stock, "festival_id": offer.festival_id, "version": offer.version,
        "per_device": offer.per_device,
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
        amount_off_fen=to_fen(form_str(form, "amount_off_yuan", 40)),
        min_spend_fen=to_fen(form_str(form, "min_spend_yuan", 40)),
        coupon_code=form_str(form, "coupon_code", 100) or None, valid_from=moments["valid_from"],
        valid_until=moments["valid_until"], stock=form_str(form, "stock", 40),
        festival_id=form_str(form, "festival_id", 100) or None, per_device=form_str(form, "per_device", 40) or None,
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
                                                     "errors": {**as_yuan(exc.fields), **problems}}, 422)
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
            "offer": offer, "values": Values.of_form(form), "errors": {**as_yuan(exc.fields), **problems}}, 422)
    except Conflict as exc:
        offer = await offers.get_for_edit(db, actor, offer_id)
        values = Values.of_form(form)
        values.set("version", str(offer.version))
        return await _offer_page(request, await _merchant_of(request, actor, offer), {
            "offer": offer, "values": values, "conflict": as_yuan(exc.current)}, 409)
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
