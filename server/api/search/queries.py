from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.districts.types import DistrictType
from server.api.errors import BAD_USER_INPUT, ApiError
from server.api.merchants.types import MerchantType
from server.api.products.types import ProductType
from server.domain.districts import repository as districts
from server.domain.merchants import repository as merchants
from server.domain.products import repository as products
from server.domain.search.terms import query_terms

MAX_PER_GROUP = 20


@strawberry.type(description="Search results grouped by kind.")
class SearchResults:
    merchants: list[MerchantType]
    products: list[ProductType]
    districts: list[DistrictType]


@strawberry.type
class SearchQueries:
    @strawberry.field(description="One box for everything: 汉字, 繁體, pinyin (huaqiangbei) or initials (hqb).")
    async def search(
        self, info: AppInfo, query: str, first: int = 10,
        locale: LocaleArg = None,
    ) -> SearchResults:
        info.context.use_locale(locale)
        if len(query) > 100:
            raise ApiError(BAD_USER_INPUT, "query is at most 100 characters", field="query")
        if not 0 < first <= MAX_PER_GROUP:
            raise ApiError(BAD_USER_INPUT, f"first must be from 1 to {MAX_PER_GROUP}", field="first")
        terms = query_terms(query)
        locale_ = info.context.locale
        if not terms:
            return SearchResults(merchants=[], products=[], districts=[])
        db = info.context.db
        return SearchResults(
            merchants=[MerchantType.of(m, locale_) for m in await merchants.search(db, terms, first)],
            products=[ProductType.of(p, locale_) for p in await products.search(db, terms, first)],
            districts=[DistrictType.of(d, locale_) for d in await districts.search_districts(db, terms, first)],
        )
