from __future__ import annotations

from datetime import timedelta

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.errors import BAD_USER_INPUT, ApiError
from server.api.ids import key_of, not_found
from server.api.offers.types import OfferFilter, OfferType
from server.api.pagination import Connection, decode_cursor, page_size
from server.domain.offers import repository
from server.domain.offers.repository import OfferQuery


async def offer_connection(info: AppInfo, q: OfferQuery, first: int | None,
                           after: str | None) -> Connection[OfferType]:
    page = await repository.find_page(info.context.db, q, page_size(first), decode_cursor(after))
    locale = info.context.locale
    return Connection.of(page, lambda offer: OfferType.of(offer, locale))


def _query(info: AppInfo, f: OfferFilter | None) -> OfferQuery:
    f = f or OfferFilter()
    now = info.context.now
    q = OfferQuery(active_at=now if f.active_only else None)
    if f.district_id is not None:
        q.district_id = key_of(f.district_id, "District")
    if f.merchant_id is not None:
        q.merchant_id = key_of(f.merchant_id, "Merchant")
    if f.festival_id is not None:
        q.festival_id = key_of(f.festival_id, "Festival")
    if f.ending_within_hours is not None:
        if not 0 < f.ending_within_hours <= 24 * 90:
            raise ApiError(BAD_USER_INPUT, "endingWithinHours must be from 1 to 2160", field="endingWithinHours")
        q.ending_before = now + timedelta(hours=f.ending_within_hours)
    return q


@strawberry.type
class OfferQueries:
    @strawberry.field(description="Offers, ending soonest first.")
    async def offers(
        self, info: AppInfo, filter: OfferFilter | None = None, first: int | None = None,
        after: str | None = None, locale: LocaleArg = None,
    ) -> Connection[OfferType]:
        info.context.use_locale(locale)
        return await offer_connection(info, _query(info, filter), first, after)

    @strawberry.field
    async def offer(
        self, info: AppInfo, id: strawberry.ID,
        locale: LocaleArg = None,
    ) -> OfferType | None:
        info.context.use_locale(locale)
        found = await info.context.loaders.offer.load(key_of(id, "Offer"))
        if found is None:
            raise not_found("Offer", id)
        return OfferType.of(found, info.context.locale)
