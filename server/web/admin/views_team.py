"""Who works in the back office: invitations (operators invite merchants, admins operators)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.accounts import service as accounts
from server.domain.actor import Actor
from server.domain.districts.repository import districts_by_ids, list_districts
from server.domain.errors import Invalid
from server.domain.merchants import service as merchants
from server.web.admin.common import (
    Values,
    db_of,
    form_list,
    form_str,
    page,
    posted,
    render,
    signed_in,
)


async def _invite_page(request: Request, actor: Actor, context: dict[str, Any], status_code: int = 200) -> Response:
    authz.district_operator(actor, sorted(actor.district_ids), "accounts")  # operators and admins invite
    db = db_of(request)
    shops = await merchants.of_actor(db, actor)
    names = await districts_by_ids(db, sorted({m.district_id for m in shops}))
    groups: dict[str, list[Any]] = {}
    for shop in shops:
        groups.setdefault(shop.district_id, []).append(shop)
    roles = ["merchant", "operator", "admin"] if actor.is_admin else ["merchant"]
    return render(request, "invite.html", {
        "roles": roles, "shop_groups": groups, "district_names": names, "invitation": None, "link": "",
        "districts": await list_districts(db) if actor.is_admin else [], **context}, status_code)


@page
async def invite_form(request: Request) -> Response:
    actor = await signed_in(request)
    merchant = request.query_params.get("merchant", "")
    role = request.query_params.get("role", "merchant")
    return await _invite_page(request, actor, {"values": Values({"role": role, "merchant_ids": [merchant]
                                                                 if merchant else []})})


@page
async def invite(request: Request) -> Response:
    actor, form = await posted(request)
    try:
        invitation = await accounts.invite(db_of(request), actor, form_str(form, "email", 320),
                                           form_str(form, "role", 20), form_list(form, "merchant_ids"),
                                           form_list(form, "district_ids"))
    except Invalid as exc:
        return await _invite_page(request, actor, {"values": Values.of_form(form), "errors": exc.fields}, 422)
    link = f"{str(request.base_url).rstrip('/')}/admin/invite/{invitation.token}"
    # the link is shown here once; only its hash is stored
    return render(request, "invite_done.html", {"invitation": invitation, "link": link})
