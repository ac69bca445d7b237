from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.errors import BAD_USER_INPUT, ApiError
from server.api.ids import key_of, not_found
from server.api.pagination import Connection, decode_cursor, page_size
from server.api.products.types import ProductFilter, ProductType
from server.domain.merchants import repository as merchants
from server.domain.products import repository
from server.domain.search.terms import query_terms


async def _query(info: AppInfo, f: ProductFilter | None) -> repository.ProductQuery:
    q = repository.ProductQuery()
    if f is None:
        return q
    q.category = f.category.strip().lower()[:40] if f.category else None
    if f.merchant_id is not None:
        q.merchant_id = key_of(f.merchant_id, "Merchant")
    if f.district_id is not None:
        district = key_of(f.district_id, "District")
        q.district_merchant_ids = await merchants.ids_in_district(info.context.db, district)
    if f.query is not None:
        if len(f.query) > 100:
            raise ApiError(BAD_USER_INPUT, "query is at most 100 characters", field="query")
        q.terms = query_terms(f.query)
    return q


@strawberry.type
class ProductQueries:
    @strawberry.field(description="深圳手信 products with where to buy them.")
    async def products(
        self, info: AppInfo, filter: ProductFilter | None = None, first: int | None = None,
        after: str | None = None, locale: LocaleArg = None,
    ) -> Connection[ProductType]:
        info.context.use_locale(locale)
        page = await repository.find_page(info.context.db, await _query(info, filter), page_size(first),
                                          decode_cursor(after))
        locale = info.context.locale
        return Connection.of(page, lambda product: ProductType.of(product, locale))

    @strawberry.field
    async def product(
        self, info: AppInfo, id: strawberry.ID,
        locale: LocaleArg = None,
    ) -> ProductType | None:
        info.context.use_locale(locale)
        found = await info.context.loaders.product.load(key_of(id, "Product"))
        if found is None:
            raise not_found("Product", id)
        return ProductType.of(found, info.context.locale)
