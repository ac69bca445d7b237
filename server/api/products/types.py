from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.common import AppInfo, Node
from server.api.ids import to_global
from server.api.images.types import ImageType, images_of
from server.domain.i18n import pick
from server.domain.products.models import Product

if TYPE_CHECKING:
    from server.api.merchants.types import MerchantType


@strawberry.input
class ProductFilter:
    category: str | None = None
    merchant_id: strawberry.ID | None = None
    district_id: strawberry.ID | None = None
    query: str | None = strawberry.field(default=None, description="Search text: 汉字, 繁體, pinyin or initials.")


@strawberry.type(name="Product", description="A 深圳手信: a Shenzhen gift or local specialty; prices in fen (分).")
class ProductType(Node):
    slug: str
    name: str
    story: str
    category: str
    price_min_fen: int
    price_max_fen: int
    unit: str
    version: int = strawberry.field(description="Pass it back when saving (optimistic concurrency).")
    model: strawberry.Private[Product]

    @staticmethod
    def of(product: Product, locale: str) -> ProductType:
        return ProductType(
            id=strawberry.ID(to_global("Product", product.id)), slug=product.id, name=pick(product.name, locale),
            story=pick(product.story, locale), category=product.category, price_min_fen=product.price_min_fen,
            price_max_fen=product.price_max_fen, unit=pick(product.unit, locale), version=product.version,
            model=product,
        )

    @strawberry.field(description="Pictures, first the one to show on a card.")
    async def images(self, info: AppInfo) -> list[ImageType]:
        return await images_of(info, "product", self.model.id)

    @strawberry.field(description="Where to buy it.")
    async def sold_by(
        self, info: AppInfo,
    ) -> list[Annotated[MerchantType, strawberry.lazy("server.api.merchants.types")]]:
        from server.api.merchants.types import MerchantType

        found = await info.context.loaders.merchant.load_many(self.model.sold_by)
        return [MerchantType.of(m, info.context.locale) for m in found if m is not None]
