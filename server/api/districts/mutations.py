from __future__ import annotations

import strawberry

from server.api.common import AppInfo
from server.api.districts.types import AreaType
from server.api.ids import key_of
from server.api.payloads import FieldError, actor, saved
from server.domain.districts import service
from server.domain.districts.models import Area


@strawberry.type
class AreaPayload:
    area: AreaType | None
    errors: list[FieldError]


@strawberry.type
class DistrictMutations:
    @strawberry.mutation(description="An operator sets how many people an area holds (crowd levels use it).")
    async def set_area_capacity(self, info: AppInfo, id: strawberry.ID, version: int, capacity: int) -> AreaPayload:
        who = await actor(info)
        area, errors = await saved(info, service.set_capacity(info.context.db, who, key_of(id, "Area"), capacity,
                                                              version), Area.from_doc, AreaType.of)
        return AreaPayload(area=area, errors=errors)
