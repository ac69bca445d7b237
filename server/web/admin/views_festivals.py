"""Festivals of an operator's districts, and which of their offers are featured."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.actor import Actor
from server.domain.districts.repository import districts_of, list_districts
from server.domain.errors import Conflict, Invalid
from server.domain.festivals import service as festivals
from server.domain.festivals.models import KINDS as FESTIVAL_KINDS
from server.domain.festivals.models import Festival
from server.domain.festivals.repository import list_festivals
from server.domain.merchants.repository import merchants_by_ids
from server.domain.offers import repository as offer_repository
from server.domain.offers import service as offers
from server.web.admin.common import (
    Values,
    db_of,
    form_list,
    form_str,
    form_version,
    localized_input,
    localized_values,
    page,
    parse_day,
    posted,
    render,
    see_other,
    signed_in,
)
from server.web.admin.views_images import pictures_context


def festival_values(festival: Festival | None, version: int = 0, district_ids: list[str] | None = None) -> Values:
    if festival is None:
        return Values({"kind": "shopping", "district_ids": district_ids or []})
    return Values({
        **localized_values("name", festival.name), **localized_values("description", festival.description),
        "kind": festival.kind, "starts_on": festival.starts_on.isoformat(), "ends_on": festival.ends_on.isoformat(),
        "district_ids": festival.district_ids, "version": version,
    })


def festival_input(form: FormData) -> tuple[festivals.FestivalInput, dict[str, str]]:
    problems: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name in ("starts_on", "ends_on"):
        days[name], problem = parse_day(form_str(form, name, 40))
        if problem:
            problems[name] = problem
    data = festivals.FestivalInput(name=localized_input(form, "name", 500),
                                   description=localized_input(form, "description"),
                                   kind=form_str(form, "kind", 40), starts_on=days["starts_on"],
                                   ends_on=days["ends_on"], district_ids=form_list(form, "district_ids"))
    if not data.district_ids:
        problems["district_ids"] = "required"
    return data, problems


async def _festival_page(request: Request, actor: Actor, context: dict[str, Any], status_code: int = 200) -> Response:
    districts = await districts_of(db_of(request), actor)
    festival = context.get("festival")
    pictures = await pictures_context(request, actor, "festival", festival.id if festival else None)
    return render(request, "festival.html", {"kinds": FESTIVAL_KINDS, "districts": districts,
                                             "festival": None, "conflict": None, **pictures, **context}, status_code)


@page
async def festival_list(request: Request) -> Response:
    actor = await signed_in(request)
    found = await list_festivals(db_of(request), None, datetime.now(UTC))
    mine = found if actor.is_admin else [f for f in found if actor.district_ids & set(f.district_ids)]
    names = {d.id: d for d in await list_districts(db_of(request))}
    return render(request, "festivals.html", {"festivals": mine, "district_names": names})


@page
async def new_festival_form(request: Request) -> Response:
    actor = await signed_in(request)
    authz.district_operator(actor, sorted(actor.district_ids), "festivals")
    own = sorted(actor.district_ids)
    preselected = own if len(own) == 1 else []  # an operator of one district needn't tick it
    return await _festival_page(request, actor, {"values": festival_values(None, district_ids=preselected)})


@page
async def new_festival(request: Request) -> Response:
    actor, form = await posted(request)
    data, problems = festival_input(form)
    slug = form_str(form, "slug", 100).strip().lower()
    try:
        if problems:  # unreadable dates or no district: show them, once we know this actor may create festivals
            authz.district_operator(actor, data.district_ids or sorted(actor.district_ids), "festivals")
            raise Invalid({})
        created = await festivals.create(db_of(request), actor, slug, data)
    except Invalid as exc:
        return await _festival_page(request, actor, {"values": Values.of_form(form),
                                                     "errors": {**exc.fields, **problems}}, 422)
    return see_other(f"/admin/festivals/{created.id}?ok=created")


@page
async def festival_form(request: Request) -> Response:
    actor = await signed_in(request)
    festival, version = await festivals.get_for_edit(db_of(request), actor, request.path_params["festival_id"])
    return await _festival_page(request, actor, {"festival": festival, "values": festival_values(festival, version)})


@page
async def festival_save(request: Request) -> Response:
    actor, form = await posted(request)
    db = db_of(request)
    festival_id = request.path_params["festival_id"]
    data, problems = festival_input(form)
    try:
        if problems:
            await festivals.get_for_edit(db, actor, festival_id)  # who may comes first
            raise Invalid({})
        await festivals.update(db, actor, festival_id, data, form_version(form))
    except Invalid as exc:
        festival, _ = await festivals.get_for_edit(db, actor, festival_id)
        return await _festival_page(request, actor, {"festival": festival, "values": Values.of_form(form),
                                                     "errors": {**exc.fields, **problems}}, 422)
    except Conflict as exc:
        festival, version = await festivals.get_for_edit(db, actor, festival_id)
        values = Values.of_form(form)
        values.set("version", str(version))
        return await _festival_page(request, actor, {"festival": festival, "values": values,
                                                     "conflict": exc.current}, 409)
    return see_other(f"/admin/festivals/{festival_id}?ok=saved")


@page
async def festival_offers(request: Request) -> Response:
    actor = await signed_in(request)
    db = db_of(request)
    festival, _ = await festivals.get_for_edit(db, actor, request.path_params["festival_id"])
    found = (await offer_repository.by_festivals(db, [festival.id])).get(festival.id, [])
    shops = await merchants_by_ids(db, {o.merchant_id for o in found})
    return render(request, "festival_offers.html", {"festival": festival, "offers": found, "shops": shops})


@page
async def decide_offer(request: Request) -> Response:
    actor, form = await posted(request)
    offer = await offers.decide_for_festival(db_of(request), actor, request.path_params["offer_id"],
                                             form_str(form, "decision", 20), form_version(form))
    return see_other(f"/admin/festivals/{offer.festival_id}/offers?ok=saved")
