from __future__ import annotations

from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.common import AppInfo, Node
from server.api.ids import to_global
from server.api.images.types import ImageType, images_of
from server.domain.festivals.models import Festival
from server.domain.i18n import pick

if TYPE_CHECKING:
    from server.api.districts.types import DistrictType
    from server.api.offers.types import OfferType


@strawberry.enum
class FestivalWhen(Enum):
    CURRENT = "current"
    UPCOMING = "upcoming"
    PAST = "past"


@strawberry.enum
class FestivalKind(Enum):
    SHOPPING = "shopping"
    FOOD = "food"
    JEWELLERY = "jewellery"
    AUTO = "auto"
    CULTURE = "culture"


@strawberry.type(name="Festival", description="A shopping festival or event (购物节, 美食节 …).")
class FestivalType(Node):
    slug: str
    name: str
    description: str
    kind: FestivalKind
    starts_on: date = strawberry.field(description="First day, Shenzhen local date.")
    ends_on: date = strawberry.field(description="Last day (inclusive), Shenzhen local date.")
    version: int = strawberry.field(description="Pass it back when saving (optimistic concurrency).")
    model: strawberry.Private[Festival]

    @staticmethod
    def of(festival: Festival, locale: str) -> FestivalType:
        return FestivalType(
            id=strawberry.ID(to_global("Festival", festival.id)), slug=festival.id,
            name=pick(festival.name, locale), description=pick(festival.description, locale),
            kind=FestivalKind(festival.kind), starts_on=festival.starts_on, ends_on=festival.ends_on,
            version=festival.version,
            model=festival,
        )

    @strawberry.field(description="Pictures, first the one to show on a card.")
    async def images(self, info: AppInfo) -> list[ImageType]:
        return await images_of(info, "festival", self.model.id)

    @strawberry.field
    async def districts(
        self, info: AppInfo,
    ) -> list[Annotated[DistrictType, strawberry.lazy("server.api.districts.types")]]:
        from server.api.districts.types import DistrictType

        found = await info.context.loaders.district.load_many(self.model.district_ids)
        return [DistrictType.of(d, info.context.locale) for d in found if d is not None]

    @strawberry.field(description="Offers linked to this festival.")
    async def offers(self, info: AppInfo) -> list[Annotated[OfferType, strawberry.lazy("server.api.offers.types")]]:
        from server.api.offers.types import OfferType

        found = await info.context.loaders.offers_of_festival.load(self.model.id)
        return [OfferType.of(o, info.context.locale) for o in found]
