from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.festivals.types import FestivalType, FestivalWhen
from server.api.ids import key_of, not_found
from server.domain.festivals import repository


async def festival_list(info: AppInfo, when: FestivalWhen | None, district_key: str | None) -> list[FestivalType]:
    found = await repository.list_festivals(
        info.context.db, repository.When(when.value) if when else None, info.context.now, district_key)
    return [FestivalType.of(f, info.context.locale) for f in found]


@strawberry.type
class FestivalQueries:
    @strawberry.field(description="Festivals; current and upcoming in date order, past ones most recent first.")
    async def festivals(
        self, info: AppInfo, when: FestivalWhen | None = None, district_id: strawberry.ID | None = None,
        locale: LocaleArg = None,
    ) -> list[FestivalType]:
        info.context.use_locale(locale)
        return await festival_list(info, when, key_of(district_id, "District") if district_id else None)

    @strawberry.field
    async def festival(
        self, info: AppInfo, id: strawberry.ID,
        locale: LocaleArg = None,
    ) -> FestivalType | None:
        info.context.use_locale(locale)
        found = await info.context.loaders.festival.load(key_of(id, "Festival"))
        if found is None:
            raise not_found("Festival", id)
        return FestivalType.of(found, info.context.locale)
