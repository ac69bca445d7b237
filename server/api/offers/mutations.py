from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from enum import Enum

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.offers.types import OfferKind, OfferType
from server.api.payloads import FieldError, LocalizedInput, actor, attempt, saved, texts
from server.domain.offers import service
from server.domain.offers.models import Offer


@strawberry.input(description="An offer as a merchant writes it; money in fen (分).")
class OfferInput:
    title: LocalizedInput
    description: LocalizedInput | None = None
    kind: OfferKind
    percent_off: int | None = None
    amount_off_fen: int | None = None
    min_spend_fen: int | None = None
    coupon_code: str | None = None
    valid_from: datetime
    valid_until: datetime
    stock: int | None = None
    festival_id: strawberry.ID | None = None
    per_device: int | None = strawberry.field(default=None, description="Coupons one device may claim (1–20; 1).")

    def to_service(self) -> service.OfferInput:
        return service.OfferInput(
            title=texts(self.title), description=texts(self.description), kind=self.kind.value,
            percent_off=self.percent_off, amount_off_fen=self.amount_off_fen, min_spend_fen=self.min_spend_fen,
            coupon_code=self.coupon_code, valid_from=self.valid_from, valid_until=self.valid_until,
            stock=self.stock, festival_id=key_of(self.festival_id, "Festival") if self.festival_id else None,
            per_device=self.per_device,
        )


@strawberry.enum
class FestivalDecision(Enum):
    FEATURED = "featured"
    REJECTED = "rejected"
    NONE = "none"


@strawberry.enum
class OfferInteraction(Enum):
    VIEW = "views"
    SAVE = "saves"


@strawberry.type
class OfferPayload:
    offer: OfferType | None = strawberry.field(description="The saved offer; on CONFLICT, what is stored now.")
    errors: list[FieldError]


async def _payload(info: AppInfo, work: Awaitable[Offer]) -> OfferPayload:
    offer, errors = await saved(info, work, Offer.from_doc, OfferType.of)
    return OfferPayload(offer=offer, errors=errors)


@strawberry.type
class OfferMutations:
    @strawberry.mutation(description="A merchant drafts an offer (not visible to shoppers until published).")
    async def create_offer(self, info: AppInfo, merchant_id: strawberry.ID, input: OfferInput) -> OfferPayload:
        who = await actor(info)
        return await _payload(info, service.create(info.context.db, who, key_of(merchant_id, "Merchant"),
                                                   input.to_service()))

    @strawberry.mutation(description="Saves over `version`; a stale version gets a CONFLICT error.")
    async def update_offer(self, info: AppInfo, id: strawberry.ID, version: int, input: OfferInput) -> OfferPayload:
        who = await actor(info)
        return await _payload(info, service.update(info.context.db, who, key_of(id, "Offer"), input.to_service(),
                                                   version))

    @strawberry.mutation
    async def publish_offer(self, info: AppInfo, id: strawberry.ID, version: int) -> OfferPayload:
        who = await actor(info)
        return await _payload(info, service.transition(info.context.db, who, key_of(id, "Offer"), "publish", version))

    @strawberry.mutation
    async def withdraw_offer(self, info: AppInfo, id: strawberry.ID, version: int) -> OfferPayload:
        who = await actor(info)
        return await _payload(info, service.transition(info.context.db, who, key_of(id, "Offer"), "withdraw",
                                                       version))

    @strawberry.mutation(description="A festival's operator features an offer or rejects it from the festival.")
    async def decide_festival_offer(self, info: AppInfo, id: strawberry.ID, version: int,
                                    decision: FestivalDecision) -> OfferPayload:
        who = await actor(info)
        return await _payload(info, service.decide_for_festival(info.context.db, who, key_of(id, "Offer"),
                                                                decision.value, version))

    @strawberry.mutation(description="A shopper viewed or saved an offer (anonymous counters for its merchant).")
    async def record_offer_interaction(self, info: AppInfo, id: strawberry.ID,
                                       kind: OfferInteraction) -> list[FieldError]:
        _, errors, _ = await attempt(info, service.count_interaction(info.context.db, key_of(id, "Offer"),
                                                                     kind.value))
        return errors
