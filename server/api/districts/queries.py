from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.districts.types import AreaType, DistrictType
from server.api.ids import key_of, not_found
from server.domain.districts import repository


@strawberry.type
class DistrictQueries:
    @strawberry.field(description="All business districts.")
    async def districts(
        self, info: AppInfo, locale: LocaleArg = None,
    ) -> list[DistrictType]:
        info.context.use_locale(locale)
        return [DistrictType.of(d, info.context.locale) for d in await repository.list_districts(info.context.db)]

    @strawberry.field
    async def district(
        self, info: AppInfo, id: strawberry.ID,
        locale: LocaleArg = None,
    ) -> DistrictType | None:
        info.context.use_locale(locale)
        found = await info.context.loaders.district.load(key_of(id, "District"))
        if found is None:
            raise not_found("District", id)
        return DistrictType.of(found, info.context.locale)

    @strawberry.field
    async def area(
        self, info: AppInfo, id: strawberry.ID,
        locale: LocaleArg = None,
    ) -> AreaType | None:
        info.context.use_locale(locale)
        found = await info.context.loaders.area.load(key_of(id, "Area"))
        if found is None:
            raise not_found("Area", id)
        return AreaType.of(found, info.context.locale)
