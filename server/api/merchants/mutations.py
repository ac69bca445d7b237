from __future__ import annotations

from collections.abc import Awaitable
from datetime import date

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.merchants.types import MerchantType
from server.api.payloads import FieldError, LocalizedInput, actor, saved, texts
from server.domain.merchants import service
from server.domain.merchants.models import Merchant


@strawberry.input(description="Spans of one weekday, e.g. 10:00-22:00; an end before the start is the next day.")
class OpeningDayInput:
    day: str
    spans: list[str]


@strawberry.input(description="Hours of one date replacing its weekday's; no spans means closed that day.")
class DateHoursInput:
    date: date
    spans: list[str]


@strawberry.input
class MerchantProfileInput:
    name: LocalizedInput
    description: LocalizedInput | None = None
    address: LocalizedInput | None = None
    phone: str
    categories: list[str]
    price_level: int
    hours: list[OpeningDayInput]
    lat: float
    lng: float
    area_id: strawberry.ID
    hours_exceptions: list[DateHoursInput] | None = None

    def to_service(self) -> service.ProfileInput:
        return service.ProfileInput(
            name=texts(self.name), description=texts(self.description), address=texts(self.address),
            phone=self.phone, categories=self.categories[:10], price_level=self.price_level,
            hours={d.day: d.spans[:6] for d in self.hours[:7]}, lat=self.lat, lng=self.lng,
            area_id=key_of(self.area_id, "Area"),
            exceptions={d.date.isoformat(): d.spans[:6] for d in (self.hours_exceptions or [])[:60]},
        )


@strawberry.type
class MerchantPayload:
    merchant: MerchantType | None = strawberry.field(description="The saved profile; on CONFLICT, what is stored now.")
    errors: list[FieldError]


async def _payload(info: AppInfo, work: Awaitable[Merchant]) -> MerchantPayload:
    merchant, errors = await saved(info, work, Merchant.from_doc, MerchantType.of)
    return MerchantPayload(merchant=merchant, errors=errors)


@strawberry.type
class MerchantMutations:
    @strawberry.mutation(description="The merchant, an operator of its district or an admin edits a profile.")
    async def update_merchant_profile(self, info: AppInfo, id: strawberry.ID, version: int,
                                      input: MerchantProfileInput) -> MerchantPayload:
        who = await actor(info)
        return await _payload(info, service.update_profile(info.context.db, who, key_of(id, "Merchant"),
                                                           input.to_service(), version))

    @strawberry.mutation(description="An operator lists a new merchant in its district.")
    async def create_merchant(self, info: AppInfo, district_id: strawberry.ID,
                              input: MerchantProfileInput) -> MerchantPayload:
        who = await actor(info)
        return await _payload(info, service.create(info.context.db, who, key_of(district_id, "District"),
                                                   input.to_service()))
