"""The operators' and admins' /admin home: a festival dashboard with one card per district of theirs.

Each card is rendered on the server, charts included (server/web/admin/charts.py), so the page is complete
without JavaScript; /admin/static/dashboard.js swaps in a fresh card from /admin/districts/{id}/card every
REFRESH_SECONDS. Authorization is the services' own: a card of a district not run by the actor is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.actor import Actor
from server.domain.crowd import alerts, live, outlook
from server.domain.crowd.models import LEVELS, Crowd, no_data
from server.domain.districts.models import Area, District
from server.domain.districts.repository import areas_by_district, districts_by_ids, list_districts
from server.domain.errors import NotFound
from server.domain.festivals.models import Festival
from server.domain.festivals.repository import When, list_festivals
from server.domain.i18n import pick
from server.domain.merchants.hours import SHANGHAI
from server.domain.offers import stats_service
from server.domain.offers.models import Offer
from server.domain.push import campaign_service
from server.domain.push.campaign import Campaign
from server.services.mongo import Doc
from server.settings import Settings
from server.web.admin import charts
from server.web.admin.common import db_of, locale_of, page, render, signed_in

REFRESH_SECONDS = 20
FUNNEL_STAGES = ("targeted", "sent", "delivered", "clicked")
RECENT_CAMPAIGN_DAYS = 7
MAX_CAMPAIGNS = 4  # a funnel chart with more bars than this is no longer readable on a phone
MAX_OFFERS = 8
MAX_FESTIVALS = 3  # festivals running at once in one district: more would crowd out the rest of the card
RUNNING = ("awaiting_approval", "scheduled", "sending")


@dataclass(slots=True)
class AreaCard:
    area: Area
    crowd: Crowd
    threshold: float
    threshold_level: str
    ruled: bool
    curve: outlook.DayCurve
    chart: str = ""


@dataclass(frozen=True, slots=True)
class FestivalOffers:
    festival: Festival
    offers: list[tuple[Offer, dict[str, int]]]
    chart: str


@dataclass(slots=True)
class DistrictCard:
    district: District
    overall: Crowd
    areas: list[AreaCard]
    alerts: list[alerts.Alert]
    campaigns: list[tuple[Campaign, str]]
    funnel_chart: str
    festivals: list[FestivalOffers]
    updated_at: datetime
    area_names: dict[str, str] = field(default_factory=dict)


def _threshold(rule: alerts.AlertRule | None, thresholds: tuple[int, int, int]) -> tuple[float, str]:
    """The percent an area's alert fires at: its rule's level, else PACKED (the rule form's suggestion)."""
    level = rule.raise_at if rule is not None and rule.raise_at in LEVELS[1:] else "PACKED"
    return float(thresholds[LEVELS.index(level) - 1]), level


def _crowd_chart(card: AreaCard, locale: str) -> str:
    t = messages.translate
    labels = [h.astimezone(SHANGHAI).strftime("%H") for h in card.curve.hours]
    measured = [None if v is None else round(v, 1) for v in card.curve.measured]
    return charts.render(charts.CROWD_DAY, t("crowd_today_chart", locale, area=pick(card.area.name, locale)), labels, [
        (t("series_measured", locale), measured),
        (t("series_expected", locale), [round(v, 1) for v in card.curve.expected]),
        (t("series_threshold", locale, percent=round(card.threshold), level=card.threshold_level),
         [card.threshold] * len(labels)),
    ])


def _funnel_chart(campaigns: list[tuple[Campaign, str]], locale: str) -> str:
    if not campaigns:
        return ""
    t = messages.translate
    return charts.render(charts.FUNNEL, t("campaign_funnel_chart", locale),
                         [t(f"stat_{s}", locale) for s in FUNNEL_STAGES],
                         [(pick(c.title, locale)[:30], [c.stats.get(s, 0) for s in FUNNEL_STAGES])
                          for c, _ in campaigns])


def _offers_chart(festival: Festival, offers: list[tuple[Offer, dict[str, int]]], locale: str) -> str:
    if not offers:
        return ""
    t = messages.translate
    shown = list(reversed(offers[:MAX_OFFERS]))  # a horizontal bar chart draws its first label at the bottom
    return charts.render(charts.OFFERS, t("festival_offers_title", locale, festival=pick(festival.name, locale)),
                         [pick(o.title, locale)[:24] for o, _ in shown],
                         [(t("claims", locale), [n["claims"] for _, n in shown]),
                          (t("redemptions", locale), [n["redemptions"] for _, n in shown])])


async def _areas(db: AsyncDatabase[Doc], actor: Actor, district: District, now: datetime,
                 settings: Settings) -> tuple[Crowd, list[AreaCard]]:
    rules = await alerts.rules_of_district(db, actor, district.id)  # refuses a district not the actor's
    areas = (await areas_by_district(db, [district.id])).get(district.id, [])
    updates = await live.district_updates(db, {district.id}, now, settings.crowd_stale_minutes,
                                          settings.crowd_thresholds)
    update = updates[0] if updates else None
    crowds = update.areas if update else {}
    now_of = {a.id: crowds.get(a.id) or no_data(a.capacity) for a in areas}
    # each area's history is read concurrently: the reads, not the arithmetic, take the time
    curves = await asyncio.gather(*(outlook.day_curve(db, a.id, district.id, now, now_of[a.id]) for a in areas))
    cards = []
    for area, curve in zip(areas, curves, strict=True):
        percent, level = _threshold(rules.get(area.id), settings.crowd_thresholds)
        cards.append(AreaCard(area, now_of[area.id], percent, level, area.id in rules, curve))
    return (update.district if update else no_data(sum(a.capacity for a in areas))), cards


def _campaigns(found: list[Campaign], district_id: str, now: datetime) -> list[tuple[Campaign, str]]:
    since = now - timedelta(days=RECENT_CAMPAIGN_DAYS)
    out = []
    for campaign in found:
        state = campaign.state(now.timestamp())
        if district_id in campaign.district_ids and (state in RUNNING or campaign.created_at >= since):
            out.append((campaign, state))
    return out[:MAX_CAMPAIGNS]


async def district_card(request: Request, actor: Actor, district: District, campaigns: list[Campaign]) -> DistrictCard:
    db, settings, locale = db_of(request), request.app.state.settings, locale_of(request)
    now = datetime.now(UTC)
    overall, areas = await _areas(db, actor, district, now, settings)
    midnight = datetime.combine(outlook.local_today(now), datetime.min.time(), SHANGHAI)
    fired = [a for a in await alerts.recent(db, actor, district.id) if a.kind == "raised" and a.at >= midnight]
    festivals = []
    for festival in (await list_festivals(db, When.CURRENT, now, district.id))[:MAX_FESTIVALS]:
        offers = await stats_service.festival_totals(db, actor, festival.id, district.id)
        festivals.append(FestivalOffers(festival, offers, _offers_chart(festival, offers, locale)))
    running = _campaigns(campaigns, district.id, now)
    for card in areas:
        card.chart = _crowd_chart(card, locale)
    names = {a.area.id: pick(a.area.name, locale) for a in areas}
    return DistrictCard(district, overall, areas, fired, running, _funnel_chart(running, locale), festivals, now, names)


async def _districts_of(db: AsyncDatabase[Doc], actor: Actor) -> list[District]:
    if actor.is_admin:
        return await list_districts(db)
    found = await districts_by_ids(db, sorted(actor.district_ids))
    return [found[d] for d in sorted(found)]


async def operator_home(request: Request, actor: Actor) -> Response:
    db = db_of(request)
    districts = await _districts_of(db, actor)
    campaigns = await campaign_service.recent(db, actor, limit=50) if districts else []
    # cards are independent: their reads overlap instead of adding up
    cards = list(await asyncio.gather(*(district_card(request, actor, d, campaigns) for d in districts)))
    return render(request, "festival_dashboard.html", {"cards": cards, "refresh_seconds": REFRESH_SECONDS})


@page
async def card_fragment(request: Request) -> Response:
    """One district's card alone, for the dashboard's script to swap in without a reload."""
    actor = await signed_in(request)
    db = db_of(request)
    district_id = request.path_params["district_id"]
    found = (await districts_by_ids(db, [district_id])).get(district_id)
    if found is None:
        raise NotFound(f"no district {district_id!r}")
    card = await district_card(request, actor, found, await campaign_service.recent(db, actor, limit=50))
    return render(request, "_district_card.html", {"card": card, "refresh_seconds": REFRESH_SECONDS})
