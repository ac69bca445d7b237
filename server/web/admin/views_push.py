"""Push campaigns in the back office, for district operators (their districts) and admins: the recent ones,
compose → preview → send (or schedule, or submit for four-eyes approval), and a campaign's page with its
counters, live while it sends, and approve / reject / cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.domain import authz, messages
from server.domain.accounts import service as accounts
from server.domain.actor import Actor
from server.domain.districts.repository import districts_by_ids, districts_of
from server.domain.errors import Forbidden, Invalid, NotFound, Unauthenticated
from server.domain.festivals.models import Festival
from server.domain.festivals.repository import When, list_festivals
from server.domain.festivals.repository import by_ids as festival_by_ids
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service
from server.domain.push import progress as live_progress
from server.domain.push.campaign import FINAL_STATS, STATS, Campaign, CampaignInput, Preview
from server.domain.push.models import TOPICS
from server.observability.correlation import current_request_id
from server.settings import Settings
from server.web.admin import campaign_form as cf
from server.web.admin.common import (
    Values,
    db_of,
    form_str,
    locale_of,
    page,
    posted,
    redis_of,
    render,
    see_other,
    session_actor,
    signed_in,
)

# What the list and the page call a campaign's moment; "scheduled" and "sent" are read from status, time and stats.
STATES: Final = ("awaiting_approval", "scheduled", "sending", "sent", "cancelled")
LIVE_STATES: Final = ("awaiting_approval", "scheduled", "sending")
# Counters shown first on a campaign's page; the rest follow under "details".
MAIN_STATS: Final = ("targeted", "sent", "delivered", "clicked")


def progress(campaign: Campaign) -> dict[str, int]:
    """Subscriptions with a final outcome out of those targeted."""
    targeted = campaign.stats["targeted"]
    done = sum(campaign.stats[name] for name in FINAL_STATS)
    percent = min(100, done * 100 // targeted) if targeted else (100 if campaign.finished() else 0)
    return {"done": done, "targeted": targeted, "percent": percent}


def stats_json(campaign: Campaign, now_ts: float, locale: str) -> dict[str, Any]:
    state = campaign.state(now_ts)
    return {"id": campaign.id, "state": state, "stateLabel": messages.translate(f"campaign_state_{state}", locale),
            "live": state in LIVE_STATES, "stats": dict(campaign.stats), **progress(campaign)}


async def _festivals(request: Request, actor: Actor, now: datetime) -> list[Festival]:
    """Current and upcoming festivals of the actor's districts: what a campaign may be linked to."""
    db = db_of(request)
    found = [*await list_festivals(db, When.CURRENT, now), *await list_festivals(db, When.UPCOMING, now)]
    return [f for f in found if actor.is_admin or actor.district_ids & set(f.district_ids)]


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f}".removesuffix(".0")


def _approval(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.push_approval


# ---------------------------------------------------------------- the list

@page
async def campaign_list(request: Request) -> Response:
    actor = await signed_in(request)
    db = db_of(request)
    found = await campaign_service.recent(db, actor)
    names = await districts_by_ids(db, sorted({d for c in found for d in c.district_ids}))
    now_ts = datetime.now(UTC).timestamp()
    return render(request, "campaigns.html", {
        "campaigns": [(c, c.state(now_ts)) for c in found], "district_names": names})


# ---------------------------------------------------------------- compose, preview, send

async def _compose_page(request: Request, actor: Actor, values: Values, errors: dict[str, str] | None = None,
                        status_code: int = 200) -> Response:
    now = datetime.now(UTC)
    return render(request, "campaign_form.html", {
        "districts": await districts_of(db_of(request), actor), "festivals": await _festivals(request, actor, now),
        "topics": TOPICS, "urgencies": cf.URGENCIES, "max_ttl_hours": cf.MAX_TTL_HOURS, "values": values,
        "errors": errors or {}, "approval": _approval(request)}, status_code)


@page
async def new_campaign_form(request: Request) -> Response:
    actor = await signed_in(request)
    authz.district_operator(actor, sorted(actor.district_ids), "districts")  # operators and admins compose
    own = sorted(actor.district_ids)
    return await _compose_page(request, actor, cf.new_values(own if len(own) == 1 else []))


@page
async def compose(request: Request) -> Response:
    """One form action for the three steps, so "back to edit" and "send" carry exactly what was previewed."""
    actor, form = await posted(request)
    action = cf.action_of(form)
    if action == "edit":
        authz.district_operator(actor, sorted(actor.district_ids), "districts")
        return await _compose_page(request, actor, Values.of_form(form))
    db = db_of(request)
    now = datetime.now(UTC)
    data, problems = cf.campaign_input(form)
    try:
        if problems or action == "preview":
            # nothing is stored here; with the form's own problems it only collects the service's
            previews, audience = await campaign_service.preview(db, actor, data, now=now)
            if problems:
                raise Invalid({})
            return await _preview_page(request, actor, form, data, previews, audience, now)
        created = await campaign_service.create_and_start(db, redis_of(request), actor, data, now=now,
                                                          approval=_approval(request),
                                                          request_id=current_request_id())
    except Invalid as exc:
        return await _compose_page(request, actor, Values.of_form(form), cf.form_errors(exc.fields, problems), 422)
    notice = ("campaign_awaiting" if created.status == campaign_model.AWAITING_APPROVAL
              else "campaign_scheduled" if created.scheduled(now.timestamp()) else "campaign_sent")
    return see_other(f"/admin/campaigns/{created.id}?ok={notice}")


async def _preview_page(request: Request, actor: Actor, form: FormData, data: CampaignInput,
                        previews: list[Preview], audience: int, now: datetime) -> Response:
    """What each phone language shows and how many would get it; the form's values ride along, hidden."""
    festival = {f.id: f for f in await _festivals(request, actor, now)}.get(data.festival_id or "")
    return render(request, "campaign_preview.html", {
        "previews": cf.locale_previews(previews, data), "audience": audience, "data": data,
        "hidden": cf.hidden_fields(form), "festival": festival,
        "district_names": await districts_by_ids(db_of(request), sorted(set(data.district_ids))),
        "ttl_hours": _hours(cf.effective_ttl(data.ttl, festival, data.send_at, now)), "limit": cf.PAYLOAD_LIMIT,
        "approval": _approval(request), "scheduled": data.send_at is not None and data.send_at > now})


# ---------------------------------------------------------------- a campaign

async def _campaign_page(request: Request, actor: Actor, campaign: Campaign, action_error: str = "",
                         status_code: int = 200) -> Response:
    db = db_of(request)
    now = datetime.now(UTC)
    state = campaign.state(now.timestamp())
    people = {c: await accounts.account_by_id(db, c) for c in {campaign.created_by, campaign.approved_by} if c}
    emails = {c: a.email for c, a in people.items() if a}
    festival = (await festival_by_ids(db, [campaign.festival_id])).get(campaign.festival_id) \
        if campaign.festival_id else None
    own = campaign.created_by is not None and campaign.created_by == actor.account_id
    return render(request, "campaign.html", {
        "campaign": campaign, "state": state, "live": state in LIVE_STATES, "progress": progress(campaign),
        "ttl_hours": _hours(campaign.ttl), "main_stats": MAIN_STATS,
        "other_stats": [s for s in STATS if s not in MAIN_STATS],
        "district_names": await districts_by_ids(db, list(campaign.district_ids)), "festival": festival,
        "created_by": emails.get(campaign.created_by or "", ""),
        "approved_by": emails.get(campaign.approved_by or "", ""), "own": own,
        "may_approve": state == "awaiting_approval" and not own,
        "action_error": action_error}, status_code)


@page
async def campaign_page(request: Request) -> Response:
    actor = await signed_in(request)
    campaign = await campaign_service.for_operator(db_of(request), actor, request.path_params["campaign_id"])
    return await _campaign_page(request, actor, campaign)


async def campaign_stats(request: Request) -> Response:
    """The counters as JSON for the page's script; the same authorization as the page."""
    try:
        actor = await session_actor(request)
        if not actor.signed_in:
            raise Unauthenticated()
        campaign = await campaign_service.for_operator(db_of(request), actor, request.path_params["campaign_id"])
    except Unauthenticated:
        return JSONResponse({"error": "unauthenticated"}, 401)
    except Forbidden:
        return JSONResponse({"error": "forbidden"}, 403)
    except NotFound:
        return JSONResponse({"error": "not_found"}, 404)
    return JSONResponse(stats_json(campaign, datetime.now(UTC).timestamp(), locale_of(request)))


@page
async def approve(request: Request) -> Response:
    actor, _ = await posted(request)
    db = db_of(request)
    campaign_id = request.path_params["campaign_id"]
    try:
        approved = await campaign_service.approve_and_start(db, redis_of(request), actor, campaign_id,
                                                            now=datetime.now(UTC))
    except Invalid as exc:  # the creator, or not awaiting approval any more: say why on the campaign's page
        current = await campaign_service.for_operator(db, actor, campaign_id)
        return await _campaign_page(request, actor, current, next(iter(exc.fields.values()), "invalid"), 422)
    return see_other(f"/admin/campaigns/{approved.id}?ok=campaign_approved")


@page
async def cancel(request: Request) -> Response:
    """Cancel, or reject one awaiting approval (the same stop, told apart for the notice)."""
    actor, form = await posted(request)
    db = db_of(request)
    campaign = await campaign_service.for_operator(db, actor, request.path_params["campaign_id"])  # who may comes first
    reject = form_str(form, "reject", 5) == "1"
    if reject and campaign.status != campaign_model.AWAITING_APPROVAL:
        return await _campaign_page(request, actor, campaign, campaign_model.NOT_AWAITING, 422)
    await campaign_service.cancel(db, actor, campaign.id)
    await live_progress.changed(redis_of(request), campaign.id)
    return see_other(f"/admin/campaigns/{campaign.id}?ok={'campaign_rejected' if reject else 'campaign_cancelled'}")
