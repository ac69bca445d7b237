from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg, Node
from server.api.districts.types import AreaType, DistrictType
from server.api.festivals.types import FestivalType
from server.api.ids import from_global, not_found
from server.api.merchants.types import MerchantType
from server.api.offers.types import OfferType
from server.api.products.types import ProductType

NODE_TYPES = (DistrictType, AreaType, MerchantType, OfferType, FestivalType, ProductType)


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global ID.")
    async def node(
        self, info: AppInfo, id: strawberry.ID,
        locale: LocaleArg = None,
    ) -> Node | None:
        info.context.use_locale(locale)
        type_name, key = from_global(id)
        loaders, loc = info.context.loaders, info.context.locale
        found: Node | None = None
        if type_name == "District" and (d := await loaders.district.load(key)):
            found = DistrictType.of(d, loc)
        elif type_name == "Area" and (a := await loaders.area.load(key)):
            found = AreaType.of(a, loc)
        elif type_name == "Merchant" and (m := await loaders.merchant.load(key)):
            found = MerchantType.of(m, loc)
        elif type_name == "Offer" and (o := await loaders.offer.load(key)):
            found = OfferType.of(o, loc)
        elif type_name == "Festival" and (f := await loaders.festival.load(key)):
            found = FestivalType.of(f, loc)
        elif type_name == "Product" and (p := await loaders.product.load(key)):
            found = ProductType.of(p, loc)
        if found is None:
            raise not_found(type_name, id)
        return found
