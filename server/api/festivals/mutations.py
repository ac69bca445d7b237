from __future__ import annotations

from collections.abc import Awaitable
from datetime import date

import strawberry

from server.api.common import AppInfo
from server.api.festivals.types import FestivalKind, FestivalType
from server.api.ids import key_of
from server.api.payloads import FieldError, LocalizedInput, actor, saved, texts
from server.domain.festivals import service
from server.domain.festivals.models import Festival


@strawberry.input
class FestivalInput:
    name: LocalizedInput
    description: LocalizedInput | None = None
    kind: FestivalKind
    starts_on: date
    ends_on: date
    district_ids: list[strawberry.ID]

    def to_service(self) -> service.FestivalInput:
        return service.FestivalInput(
            name=texts(self.name), description=texts(self.description), kind=self.kind.value,
            starts_on=self.starts_on, ends_on=self.ends_on,
            district_ids=[key_of(d, "District") for d in self.district_ids[:20]],
        )


@strawberry.type
class FestivalPayload:
    festival: FestivalType | None
    errors: list[FieldError]


async def _payload(info: AppInfo, work: Awaitable[Festival]) -> FestivalPayload:
    festival, errors = await saved(info, work, Festival.from_doc, FestivalType.of)
    return FestivalPayload(festival=festival, errors=errors)


@strawberry.type
class FestivalMutations:
    @strawberry.mutation(description="An operator of every listed district (or an admin) creates a festival.")
    async def create_festival(self, info: AppInfo, slug: str, input: FestivalInput) -> FestivalPayload:
        who = await actor(info)
        return await _payload(info, service.create(info.context.db, who, slug[:80], input.to_service()))

    @strawberry.mutation
    async def update_festival(self, info: AppInfo, id: strawberry.ID, version: int,
                              input: FestivalInput) -> FestivalPayload:
        who = await actor(info)
        return await _payload(info, service.update(info.context.db, who, key_of(id, "Festival"), input.to_service(),
                                                   version))
