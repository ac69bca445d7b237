from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.common import AppInfo, Node
from server.api.ids import to_global
from server.domain.i18n import pick
from server.domain.offers.models import Offer

if TYPE_CHECKING:
    from server.api.festivals.types import FestivalType
    from server.api.merchants.types import MerchantType


@strawberry.enum
class OfferKind(Enum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    GIFT = "gift"
    BUNDLE = "bundle"


@strawberry.enum
class OfferStatus(Enum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


@strawberry.input
class OfferFilter:
    district_id: strawberry.ID | None = None
    merchant_id: strawberry.ID | None = None
    festival_id: strawberry.ID | None = None
    active_only: bool = strawberry.field(default=True, description="Only offers valid now.")
    ending_within_hours: int | None = strawberry.field(default=None, description="Ending soon: within N hours.")


@strawberry.type(name="Offer", description="A promotion of one merchant; money in fen (分).")
class OfferType(Node):
    slug: str
    title: str
    description: str
    kind: OfferKind
    percent_off: int | None
    amount_off_fen: int | None
    min_spend_fen: int | None
    coupon_code: str | None
    valid_from: datetime
    valid_until: datetime
    stock: int | None
    status: OfferStatus
    version: int = strawberry.field(description="Pass it back when saving (optimistic concurrency).")
    model: strawberry.Private[Offer]

    @staticmethod
    def of(offer: Offer, locale: str) -> OfferType:
        return OfferType(
            id=strawberry.ID(to_global("Offer", offer.id)), slug=offer.id, title=pick(offer.title, locale),
            description=pick(offer.description, locale), kind=OfferKind(offer.kind),
            percent_off=offer.percent_off, amount_off_fen=offer.amount_off_fen,
            min_spend_fen=offer.min_spend_fen, coupon_code=offer.coupon_code, valid_from=offer.valid_from,
            valid_until=offer.valid_until, stock=offer.stock, status=OfferStatus(offer.status),
            version=offer.version, model=offer,
        )

    @strawberry.field(description="Valid at this moment.")
    def active(self, info: AppInfo) -> bool:
        return self.model.active_at(info.context.now)

    @strawberry.field
    async def merchant(self, info: AppInfo) -> Annotated[MerchantType, strawberry.lazy("server.api.merchants.types")]:
        from server.api.merchants.types import MerchantType

        merchant = await info.context.loaders.merchant.load(self.model.merchant_id)
        assert merchant is not None
        return MerchantType.of(merchant, info.context.locale)

    @strawberry.field
    async def festival(
        self, info: AppInfo,
    ) -> Annotated[FestivalType, strawberry.lazy("server.api.festivals.types")] | None:
        from server.api.festivals.types import FestivalType

        if self.model.festival_id is None:
            return None
        festival = await info.context.loaders.festival.load(self.model.festival_id)
        return None if festival is None else FestivalType.of(festival, info.context.locale)
