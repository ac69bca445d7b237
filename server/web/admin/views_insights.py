"""A merchant's insights: each offer's funnel per day over the last 30 days, and when to staff (the usual crowd of
the shop's area by hour over the coming week, from the crowd forecaster's popular times)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.crowd import outlook
from server.domain.crowd.state import area_crowds
from server.domain.districts.models import Area
from server.domain.districts.repository import areas_by_district
from server.domain.errors import NotFound
from server.domain.i18n import pick
from server.domain.merchants.repository import merchants_by_ids
from server.domain.offers import stats_service
from server.domain.offers.stats import FUNNEL
from server.settings import Settings
from server.web.admin import charts
from server.web.admin.common import db_of, locale_of, page, render, signed_in

DAYS = 30
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class OfferPanel:
    series: stats_service.OfferSeries
    chart: str


@dataclass(frozen=True, slots=True)
class StaffDay:
    day: date
    label: str
    outlook: outlook.DayOutlook


def _day_label(day: date, locale: str) -> str:
    return f"{messages.translate('day_' + WEEKDAYS[day.weekday()], locale)} {day.strftime('%m-%d')}"


def _offer_panel(series: stats_service.OfferSeries, locale: str) -> OfferPanel:
    t = messages.translate
    chart = charts.render(charts.OFFER_DAYS, t("offer_funnel_title", locale, offer=pick(series.offer.title, locale),
                                                days=len(series.days)),
                          [d.day.strftime("%m-%d") for d in series.days],
                          [(t(f, locale), [getattr(d, f) for d in series.days]) for f in FUNNEL])
    return OfferPanel(series, chart)


async def _staffing(request: Request, area: Area, now: datetime) -> list[StaffDay]:
    db, settings = db_of(request), request.app.state.settings
    assert isinstance(settings, Settings)
    crowd = (await area_crowds(db, [(area.id, area.capacity)], now, settings.crowd_stale_minutes,
                               settings.crowd_thresholds))[area.id]
    locale = locale_of(request)
    return [StaffDay(o.day, _day_label(o.day, locale), o)
            for o in await outlook.coming_week(db, area.id, area.district_id, now, crowd)]


def _staffing_chart(days: list[StaffDay], locale: str) -> str:
    return charts.render(charts.STAFFING, messages.translate("when_to_staff", locale),
                         [f"{h:02d}" for h in range(24)],
                         [(d.label, [round(h.typical, 1) for h in d.outlook.hours]) for d in days])


@page
async def merchant_insights(request: Request) -> Response:
    actor = await signed_in(request)
    db, locale, now = db_of(request), locale_of(request), datetime.now(UTC)
    merchant_id = request.path_params["merchant_id"]
    series = await stats_service.of_merchant(db, actor, merchant_id, DAYS, now)  # who may comes first
    shop = (await merchants_by_ids(db, [merchant_id])).get(merchant_id)
    if shop is None:
        raise NotFound(f"no merchant {merchant_id!r}")
    area = next((a for a in (await areas_by_district(db, [shop.district_id])).get(shop.district_id, [])
                 if a.id == shop.area_id), None)
    staffing = await _staffing(request, area, now) if area else []
    return render(request, "insights.html", {
        "shop": shop, "area": area, "panels": [_offer_panel(s, locale) for s in series], "days": DAYS,
        "staffing": staffing, "staffing_chart": _staffing_chart(staffing, locale) if area else ""})
