from __future__ import annotations

import math
from collections.abc import Awaitable, Hashable

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.errors import BAD_USER_INPUT, INVALID_CURSOR, ApiError
from server.api.ids import key_of, not_found
from server.api.merchants.types import MerchantConnection, MerchantEdge, MerchantFilter, MerchantType, once
from server.api.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from server.domain import freshness
from server.domain.geo import MAX_RADIUS_M, Point, valid_coordinates
from server.domain.merchants import counts, repository
from server.domain.merchants.models import Merchant
from server.domain.offers.repository import merchants_with_active_offer
from server.domain.paging import Key, Page
from server.domain.search.terms import query_terms

MAX_CATEGORIES = 10


async def _query(info: AppInfo, f: MerchantFilter | None, district_key: str | None) -> repository.MerchantQuery:
    q = repository.MerchantQuery(district_id=district_key)
    if f is None:
        return q
    if f.district_id is not None:
        key = key_of(f.district_id, "District")
        if district_key is not None and key != district_key:
            raise ApiError(BAD_USER_INPUT, "districtId differs from the district being read", field="districtId")
        q.district_id = key
    if f.area_id is not None:
        q.area_id = key_of(f.area_id, "Area")
    if f.categories:
        if len(f.categories) > MAX_CATEGORIES:
            raise ApiError(BAD_USER_INPUT, f"at most {MAX_CATEGORIES} categories", field="categories")
        q.categories = [c.strip().lower()[:40] for c in f.categories]
    if f.open_now:
        q.open_at = info.context.now
    if f.has_active_offer:
        q.with_ids = await merchants_with_active_offer(info.context.db, info.context.now)
    if f.near is not None:
        n = f.near
        if not valid_coordinates(n.lat, n.lng):
            raise ApiError(BAD_USER_INPUT, "lat must be within ±90 and lng within ±180", field="near")
        if not math.isfinite(n.radius_meters) or not 0 < n.radius_meters <= MAX_RADIUS_M:
            raise ApiError(BAD_USER_INPUT, f"radiusMeters must be above 0 and at most {MAX_RADIUS_M}",
                           field="near.radiusMeters")
        q.near = (Point(n.lat, n.lng), n.radius_meters)
    if f.query is not None:
        if len(f.query) > 100:
            raise ApiError(BAD_USER_INPUT, "query is at most 100 characters", field="query")
        q.terms = query_terms(f.query)
    return q


async def merchant_connection(
    info: AppInfo, f: MerchantFilter | None, first: int | None, after: str | None,
    district_key: str | None = None,
) -> MerchantConnection:
    """Reads nothing yet: the page is read when edges or pageInfo are asked for, the count when totalCount is."""
    size = page_size(first)
    cursor = decode_cursor(after)
    q = await _query(info, f, district_key)
    ranked = q.near is not None or bool(q.terms) or q.open_at is not None
    if cursor is not None and ranked != isinstance(cursor[0], int | float):
        raise ApiError(INVALID_CURSOR, "this cursor belongs to a list in another order; start again without `after`")
    db, locale = info.context.db, info.context.locale

    async def read_page() -> tuple[list[MerchantEdge], PageInfo]:
        page = await _page(info, q, size, cursor)
        edges = [MerchantEdge(cursor=encode_cursor(key), node=MerchantType.of(m, locale), distance_meters=dist)
                 for m, key, dist in page.items]
        ends = [e.cursor for e in edges] + ([encode_cursor(page.resume)] if page.resume is not None else [])
        return edges, PageInfo.after(ends, page.has_next)

    async def read_count() -> tuple[int, bool]:
        key = counts.counter_for(q.district_id, q.area_id, q.categories,
                                 q.open_at is not None or q.near is not None or bool(q.terms) or q.with_ids is not None)
        if key is not None:
            return await _counter(info, key, district_key if f is None else None), False
        if q.near is not None:
            memo_key = _near_memo_key(info, q, "near_count")
            if memo_key is None or info.context.entity_memo is None:
                return await repository.count_near(db, q)
            return await info.context.entity_memo.get(memo_key, lambda: repository.count_near(db, q))
        return await repository.count_matching(db, q)

    return MerchantConnection(page=once(read_page), count=once(read_count))


def _near_memo_key(info: AppInfo, q: repository.MerchantQuery, *what: Hashable) -> Hashable | None:
    """A process-memo key for what a near-me list read, while no merchant was written (ANY_WRITE): the shops
    near a point and their order depend on the merchants alone, so a miss that an offer edit caused (near me
    shows each shop's offers) reads the page's shops by id instead of ranking the boxes again. None for a
    filter that also depends on the clock (open now) or on offers (has an active offer)."""
    if q.near is None or q.open_at is not None or q.with_ids is not None:
        return None
    point, radius = q.near
    key: Hashable | None = info.context.memo_key(
        (freshness.EVERYTHING, freshness.ANY_WRITE), *what, point.lat, point.lng, radius, q.district_id, q.area_id,
        tuple(q.categories), tuple(q.terms))
    return key


async def _page(info: AppInfo, q: repository.MerchantQuery, size: int, cursor: Key | None) -> Page[Merchant]:
    """repository.find_page; a near-me page's order kept in the process memo (see _near_memo_key)."""
    db = info.context.db
    key = _near_memo_key(info, q, "near_page", size, cursor)
    memo = info.context.entity_memo
    if key is None or memo is None:
        return await repository.find_page(db, q, size, cursor)
    computed: list[Page[Merchant]] = []

    async def rank() -> tuple[tuple[tuple[Key, float | None], ...], bool, Key | None]:
        page = await repository.find_page(db, q, size, cursor)
        computed.append(page)
        return tuple((k, dist) for _, k, dist in page.items), page.has_next, page.resume

    ranked, has_next, resume = await memo.get(key, rank)
    if computed:
        return computed[0]
    # whole documents by id (the loader's), where ranking read LEAN ones: a superset of what the nodes show
    found = await info.context.loaders.merchant.load_many([k[1] for k, _ in ranked])
    if any(m is None for m in found):  # gone without a write the tags saw: rank again rather than guess
        return await repository.find_page(db, q, size, cursor)
    items = [(m, k, dist) for m, (k, dist) in zip(found, ranked, strict=True) if m is not None]
    return Page(items, has_next, repository.no_count, resume)


async def _counter(info: AppInfo, key: str, district_key: str | None) -> int:
    """A stored merchant counter; a district page's own count is kept in the process memo while the district's
    tag keeps the version this request saw, which saves the district page's miss one command."""
    def load() -> Awaitable[int]:
        return info.context.loaders.merchant_count.load(key)

    memo_key = None if district_key is None else info.context.memo_key(
        (freshness.EVERYTHING, freshness.district(district_key)), "merchant_count", district_key)
    if info.context.memo is None or memo_key is None:
        return await load()
    return await info.context.memo.get(memo_key, load)

@strawberry.type
class MerchantQueries:
    @strawberry.field(description="Merchants, filtered; sorted by distance when `near` is given.")
    async def merchants(
        self, info: AppInfo, filter: MerchantFilter | None = None, first: int | None = None,
        after: str | None = None, locale: LocaleArg = None,
    ) -> MerchantConnection:
        info.context.use_locale(locale)
        return await merchant_connection(info, filter, first, after)

    @strawberry.field
    async def merchant(
        self, info: AppInfo, id: strawberry.ID,
        locale: LocaleArg = None,
    ) -> MerchantType | None:
        info.context.use_locale(locale)
        found = await info.context.loaders.merchant.load(key_of(id, "Merchant"))
        if found is None:
            raise not_found("Merchant", id)
        return MerchantType.of(found, info.context.locale)
