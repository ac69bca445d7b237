from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.festivals.types import FestivalType, FestivalWhen
from server.api.ids import key_of, not_found
from server.domain import freshness
from server.domain.festivals import repository
from server.domain.festivals.models import Festival
from server.domain.merchants.hours import SHANGHAI


async def festival_list(info: AppInfo, when: FestivalWhen | None, district_key: str | None) -> list[FestivalType]:
    context = info.context

    async def fetch() -> list[Festival]:
        return await repository.list_festivals(
            context.db, repository.When(when.value) if when else None, context.now, district_key)

    # Kept per Shanghai day too: festivals start and end at local midnight (festivals.models.window).
    key = context.memo_key((freshness.EVERYTHING, freshness.FESTIVALS), "festivals", when, district_key,
                           context.now.astimezone(SHANGHAI).date())
    found = await context.memo.get(key, fetch) if key is not None and context.memo is not None else await fetch()
    return [FestivalType.of(f, context.locale) for f in found]


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
