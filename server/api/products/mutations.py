from __future__ import annotations

from collections.abc import Awaitable

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.payloads import FieldError, LocalizedInput, actor, saved, texts
from server.api.products.types import ProductType
from server.domain.products import service
from server.domain.products.models import Product


@strawberry.input
class ProductInput:
    name: LocalizedInput
    story: LocalizedInput
    category: str
    price_min_fen: int
    price_max_fen: int
    unit: LocalizedInput | None = None

    def to_service(self) -> service.ProductInput:
        return service.ProductInput(name=texts(self.name), story=texts(self.story), category=self.category,
                                    price_min_fen=self.price_min_fen, price_max_fen=self.price_max_fen,
                                    unit=texts(self.unit))


@strawberry.type
class ProductPayload:
    product: ProductType | None
    errors: list[FieldError]


async def _payload(info: AppInfo, work: Awaitable[Product]) -> ProductPayload:
    product, errors = await saved(info, work, Product.from_doc, ProductType.of)
    return ProductPayload(product=product, errors=errors)


@strawberry.type
class ProductMutations:
    @strawberry.mutation(description="A merchant says whether it sells a 深圳手信 product.")
    async def set_product_sold_here(self, info: AppInfo, merchant_id: strawberry.ID, product_id: strawberry.ID,
                                    sold: bool) -> ProductPayload:
        who = await actor(info)
        return await _payload(info, service.set_sold_here(info.context.db, who, key_of(merchant_id, "Merchant"),
                                                          key_of(product_id, "Product"), sold))

    @strawberry.mutation(description="A merchant adds a product of its own.")
    async def create_product(self, info: AppInfo, merchant_id: strawberry.ID, input: ProductInput) -> ProductPayload:
        who = await actor(info)
        return await _payload(info, service.create(info.context.db, who, key_of(merchant_id, "Merchant"),
                                                   input.to_service()))

    @strawberry.mutation
    async def update_product(self, info: AppInfo, id: strawberry.ID, version: int,
                             input: ProductInput) -> ProductPayload:
        who = await actor(info)
        return await _payload(info, service.update(info.context.db, who, key_of(id, "Product"), input.to_service(),
                                                   version))
