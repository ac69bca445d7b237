from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry

from server.api.common import AppInfo, GeoPoint, Node
from server.api.ids import to_global
from server.api.images.types import ImageType, images_of
from server.api.pagination import PageInfo
from server.domain.i18n import pick
from server.domain.merchants.hours import DAYS
from server.domain.merchants.models import Merchant

if TYPE_CHECKING:
    from server.api.districts.types import AreaType, DistrictType
    from server.api.offers.types import OfferType
    from server.api.products.types import ProductType


@strawberry.type(description="A merchant category, e.g. mobile-phones.")
class Category:
    slug: str
    name: str


@strawberry.type(description="Opening spans of one weekday, local time (Asia/Shanghai).")
class OpeningDay:
    day: str = strawberry.field(description="mon … sun")
    spans: list[str] = strawberry.field(description="HH:MM-HH:MM; an end before the start is the next day.")


@strawberry.type(description="Hours of one date, local time, replacing that weekday's.")
class DateHours:
    date: date
    spans: list[str]


@strawberry.input
class NearInput:
    lat: float
    lng: float
    radius_meters: float


@strawberry.input
class MerchantFilter:
    district_id: strawberry.ID | None = None
    area_id: strawberry.ID | None = None
    categories: list[str] | None = None
    open_now: bool | None = None
    has_active_offer: bool | None = None
    near: NearInput | None = None
    query: str | None = strawberry.field(default=None, description="Search text: 汉字, 繁體, pinyin or initials.")


@strawberry.type(name="Merchant", description="A shop or restaurant.")
class MerchantType(Node):
    slug: str
    name: str
    description: str
    address: str
    phone: str
    price_level: int = strawberry.field(description="1 (cheap) to 4 (premium).")
    location: GeoPoint
    version: int = strawberry.field(description="Pass it back when saving (optimistic concurrency).")
    model: strawberry.Private[Merchant]

    @staticmethod
    def of(merchant: Merchant, locale: str) -> MerchantType:
        return MerchantType(
            id=strawberry.ID(to_global("Merchant", merchant.id)), slug=merchant.id,
            name=pick(merchant.name, locale), description=pick(merchant.description, locale),
            address=pick(merchant.address, locale), phone=merchant.phone, price_level=merchant.price_level,
            location=GeoPoint.of(merchant.location), version=merchant.version, model=merchant,
        )

    @strawberry.field(description="Pictures, first the one to show on a card.")
    async def images(self, info: AppInfo) -> list[ImageType]:
        return await images_of(info, "merchant", self.model.id)

    @strawberry.field(description="Open at this moment, in Shenzhen time (holiday exceptions honoured).")
    def open_now(self, info: AppInfo) -> bool:
        self._note_turn(info)
        return self.model.open_at(info.context.now)

    @strawberry.field(description="Local HH:MM at which the current opening ends; null when closed.")
    def closes_at(self, info: AppInfo) -> str | None:
        self._note_turn(info)
        return self.model.closes_at(info.context.now)

    def _note_turn(self, info: AppInfo) -> None:
        """For a public-cache miss: when what these two fields say next changes for this merchant."""
        turns = info.context.open_turns
        if turns is not None and self.model.id not in turns:
            now = info.context.now
            turn = self.model.next_turn(now, now + timedelta(days=1))
            turns[self.model.id] = turn.timestamp() if turn is not None else math.inf

    @strawberry.field(description="Dates whose hours replace the weekly ones (an empty list: closed that day).")
    def hours_exceptions(self) -> list[DateHours]:
        return [DateHours(date=day, spans=[s.label() for s in spans])
                for day, spans in sorted(self.model.exceptions.items())]

    @strawberry.field
    def hours(self) -> list[OpeningDay]:
        return [OpeningDay(day=day, spans=self.model.hours[day]) for day in DAYS]

    @strawberry.field
    async def categories(self, info: AppInfo) -> list[Category]:
        names = await info.context.loaders.category_name.load_many(self.model.categories)
        return [Category(slug=slug, name=pick(name, info.context.locale))
                for slug, name in zip(self.model.categories, names, strict=True)]

    @strawberry.field
    async def district(self, info: AppInfo) -> Annotated[DistrictType, strawberry.lazy("server.api.districts.types")]:
        from server.api.districts.types import DistrictType

        district = await info.context.loaders.district.load(self.model.district_id)
        assert district is not None
        return DistrictType.of(district, info.context.locale)

    @strawberry.field
    async def area(self, info: AppInfo) -> Annotated[AreaType, strawberry.lazy("server.api.districts.types")]:
        from server.api.districts.types import AreaType

        area = await info.context.loaders.area.load(self.model.area_id)
        assert area is not None
        return AreaType.of(area, info.context.locale)

    @strawberry.field(description="Offers valid now.")
    async def offers(self, info: AppInfo) -> list[Annotated[OfferType, strawberry.lazy("server.api.offers.types")]]:
        from server.api.offers.types import OfferType

        found = await info.context.loaders.active_offers_of_merchant.load(self.model.id)
        return [OfferType.of(o, info.context.locale) for o in found]

    @strawberry.field(description="深圳手信 products sold here.")
    async def products(
        self, info: AppInfo,
    ) -> list[Annotated[ProductType, strawberry.lazy("server.api.products.types")]]:
        from server.api.products.types import ProductType

        found = await info.context.loaders.products_of_merchant.load(self.model.id)
        return [ProductType.of(p, info.context.locale) for p in found]


@strawberry.type
class MerchantEdge:
    cursor: str
    node: MerchantType
    distance_meters: float | None = strawberry.field(description="Set when the filter has `near`.")


@strawberry.type
class MerchantConnection:
    page: strawberry.Private[Callable[[], Awaitable[tuple[list[MerchantEdge], PageInfo]]]]
    count: strawberry.Private[Callable[[], Awaitable[tuple[int, bool]]]]

    @strawberry.field
    async def edges(self) -> list[MerchantEdge]:
        return (await self.page())[0]

    @strawberry.field
    async def page_info(self) -> PageInfo:
        return (await self.page())[1]

    @strawberry.field(description="Matches across all pages; where counting them all would read them all, the "
                                  "matches among the first ones read (at most 1000) and totalCountIsFloor is "
                                  "true: show it as 1,000+.")
    async def total_count(self) -> int:
        return (await self.count())[0]

    @strawberry.field(description="True when totalCount is a floor (shown as N+), not the exact total.")
    async def total_count_is_floor(self) -> bool:
        return (await self.count())[1]


T = TypeVar("T")


def once(read: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """`read` runs on the first call only; later calls (edges, then pageInfo) share its result."""
    task: asyncio.Future[T] | None = None

    def call() -> Awaitable[T]:
        nonlocal task
        if task is None:
            task = asyncio.ensure_future(read())
        return task

    return call
