"""`offerStats`: an offer's funnel per Shenzhen day, for the merchant, its district's operators and admins."""

from __future__ import annotations

from datetime import date

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.errors import BAD_USER_INPUT, ApiError
from server.api.ids import key_of, to_global
from server.api.offers.types import OfferStatus
from server.domain.i18n import pick
from server.domain.offers import stats_service
from server.domain.offers.stats import DayStats


@strawberry.type(description="One Shenzhen day of an offer's funnel.")
class OfferDayStats:
    day: date
    views: int
    saves: int
    claims: int
    redemptions: int

    @staticmethod
    def of(s: DayStats) -> OfferDayStats:
        return OfferDayStats(day=s.day, views=s.views, saves=s.saves, claims=s.claims, redemptions=s.redemptions)


@strawberry.type(description="An offer's views → saves → claims → redemptions: per day (oldest first) and summed.")
class OfferStats:
    offer_id: strawberry.ID
    merchant_id: strawberry.ID
    title: str
    status: OfferStatus
    days: list[OfferDayStats]
    views: int
    saves: int
    claims: int
    redemptions: int

    @staticmethod
    def of(series: stats_service.OfferSeries, locale: str) -> OfferStats:
        offer, totals = series.offer, series.totals()
        return OfferStats(
            offer_id=strawberry.ID(to_global("Offer", offer.id)),
            merchant_id=strawberry.ID(to_global("Merchant", offer.merchant_id)), title=pick(offer.title, locale),
            status=OfferStatus(offer.status), days=[OfferDayStats.of(d) for d in series.days], views=totals["views"],
            saves=totals["saves"], claims=totals["claims"], redemptions=totals["redemptions"])


@strawberry.type
class OfferStatsQueries:
    @strawberry.field(description=(
        "The funnel of one offer (offerId) or of every offer of a shop (merchantId) over the last `days` Shenzhen "
        "days (1–90). A merchant reads its own offers, an operator those of its districts, an admin all; "
        "others get FORBIDDEN (UNAUTHENTICATED when not signed in)."))
    async def offer_stats(
        self, info: AppInfo, offer_id: strawberry.ID | None = None, merchant_id: strawberry.ID | None = None,
        days: int = stats_service.DEFAULT_DAYS, locale: LocaleArg = None,
    ) -> list[OfferStats]:
        info.context.use_locale(locale)
        if (offer_id is None) == (merchant_id is None):
            raise ApiError(BAD_USER_INPUT, "give exactly one of offerId and merchantId", field="offerId")
        if not 1 <= days <= stats_service.MAX_DAYS:
            raise ApiError(BAD_USER_INPUT, f"days must be from 1 to {stats_service.MAX_DAYS}", field="days")
        context = info.context
        actor = await context.viewer()
        if offer_id is not None:
            found = [await stats_service.of_offer(context.db, actor, key_of(offer_id, "Offer"), days, context.now)]
        else:
            assert merchant_id is not None
            found = await stats_service.of_merchant(context.db, actor, key_of(merchant_id, "Merchant"), days,
                                                    context.now)
        return [OfferStats.of(s, context.locale) for s in found]
