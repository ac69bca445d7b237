from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.common import AppInfo, GeoPoint, Node
from server.api.ids import to_global
from server.api.pagination import Connection
from server.domain.districts.models import Area, District
from server.domain.i18n import pick

if TYPE_CHECKING:
    from server.api.crowd.popular import CalmerAlternative, PopularTimes
    from server.api.crowd.types import CrowdType
    from server.api.festivals.types import FestivalType, FestivalWhen
    from server.api.merchants.types import MerchantConnection, MerchantFilter
    from server.api.offers.types import OfferType


@strawberry.type(name="Area", description="A part of a district, such as 东门 in 罗湖金三角.")
class AreaType(Node):
    slug: str
    name: str
    capacity: int = strawberry.field(description="People the area holds comfortably.")
    center: GeoPoint
    version: int = strawberry.field(description="Pass it back when saving (optimistic concurrency).")
    district_key: strawberry.Private[str]

    @staticmethod
    def of(area: Area, locale: str) -> AreaType:
        return AreaType(id=strawberry.ID(to_global("Area", area.id)), slug=area.id, name=pick(area.name, locale),
                        capacity=area.capacity, center=GeoPoint.of(area.center), version=area.version,
                        district_key=area.district_id)

    @strawberry.field(description="How busy the area is now.")
    async def crowd(self, info: AppInfo) -> Annotated[CrowdType, strawberry.lazy("server.api.crowd.types")]:
        from server.api.crowd.types import CrowdType

        crowd = await info.context.loaders.crowd.load(self.slug)
        assert crowd is not None
        return CrowdType.of(crowd)

    @strawberry.field
    async def district(self, info: AppInfo) -> DistrictType:
        district = await info.context.loaders.district.load(self.district_key)
        assert district is not None
        return DistrictType.of(district, info.context.locale)

    @strawberry.field(description="A local date of the coming week (today … today + 6, Shenzhen time) hour by hour: "
                                  "usual levels from the forecaster, today's live value, the best hours, a summary. "
                                  "Other dates: DATE_OUT_OF_RANGE.")
    async def popular_times(
        self, info: AppInfo, date: date,
    ) -> Annotated[PopularTimes, strawberry.lazy("server.api.crowd.popular")]:
        from server.api.crowd.popular import area_popular_times

        area = await info.context.loaders.area.load(self.slug)
        assert area is not None
        return await area_popular_times(info, area, date)

    @strawberry.field(description="Areas within walking distance (this district or a neighbouring one) that are "
                                  "calmer now and have shops of the same categories, best first (first ≤ 10).")
    async def calmer_alternatives(
        self, info: AppInfo, first: int = 3,
    ) -> list[Annotated[CalmerAlternative, strawberry.lazy("server.api.crowd.popular")]]:
        from server.api.crowd.popular import area_alternatives

        area = await info.context.loaders.area.load(self.slug)
        assert area is not None
        return await area_alternatives(info, area, first)


@strawberry.type(name="District", description="A business district (商圈).")
class DistrictType(Node):
    slug: str
    name: str
    description: str
    center: GeoPoint
    boundary: list[list[float]] = strawberry.field(description="Closed [lng, lat] ring (GeoJSON order).")
    key: strawberry.Private[str]

    @staticmethod
    def of(district: District, locale: str) -> DistrictType:
        return DistrictType(
            id=strawberry.ID(to_global("District", district.id)), slug=district.id,
            name=pick(district.name, locale), description=pick(district.description, locale),
            center=GeoPoint.of(district.center), boundary=district.boundary, key=district.id,
        )

    @strawberry.field(description="How busy the district is now: its areas weighted by capacity.")
    async def crowd(self, info: AppInfo) -> Annotated[CrowdType, strawberry.lazy("server.api.crowd.types")]:
        from server.api.crowd.types import CrowdType
        from server.domain.crowd.state import combine_district

        areas = await info.context.loaders.areas_of_district.load(self.key)
        crowds = await info.context.loaders.crowd.load_many([a.id for a in areas])
        thresholds = info.context.settings.crowd_thresholds
        return CrowdType.of(combine_district([c for c in crowds if c], info.context.now, thresholds))

    @strawberry.field(description="Popular times of the district: its areas weighted by capacity (see Area).")
    async def popular_times(
        self, info: AppInfo, date: date,
    ) -> Annotated[PopularTimes, strawberry.lazy("server.api.crowd.popular")]:
        from server.api.crowd.popular import district_popular_times
        from server.domain.crowd.state import combine_district

        areas = await info.context.loaders.areas_of_district.load(self.key)
        crowds = await info.context.loaders.crowd.load_many([a.id for a in areas])
        live = combine_district([c for c in crowds if c], info.context.now, info.context.settings.crowd_thresholds)
        return await district_popular_times(info, self.key, live, date)

    @strawberry.field
    async def areas(self, info: AppInfo) -> list[AreaType]:
        areas = await info.context.loaders.areas_of_district.load(self.key)
        return [AreaType.of(a, info.context.locale) for a in areas]

    @strawberry.field(description="Merchants of this district; the filter narrows further.")
    async def merchants(
        self, info: AppInfo,
        filter: Annotated[MerchantFilter, strawberry.lazy("server.api.merchants.types")] | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Annotated[MerchantConnection, strawberry.lazy("server.api.merchants.types")]:
        from server.api.merchants.queries import merchant_connection

        return await merchant_connection(info, filter, first, after, district_key=self.key)

    @strawberry.field(description="Offers of this district's merchants, ending soonest first.")
    async def offers(
        self, info: AppInfo, active_only: bool = True, first: int | None = None, after: str | None = None,
    ) -> Connection[Annotated[OfferType, strawberry.lazy("server.api.offers.types")]]:
        from server.api.offers.queries import offer_connection
        from server.domain.offers.repository import OfferQuery

        query = OfferQuery(district_id=self.key, active_at=info.context.now if active_only else None)
        return await offer_connection(info, query, first, after)

    @strawberry.field
    async def festivals(
        self, info: AppInfo,
        when: Annotated[FestivalWhen, strawberry.lazy("server.api.festivals.types")] | None = None,
    ) -> list[Annotated[FestivalType, strawberry.lazy("server.api.festivals.types")]]:
        from server.api.festivals.queries import festival_list

        return await festival_list(info, when, self.key)
