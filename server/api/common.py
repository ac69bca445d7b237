"""Types and helpers shared by every area of the schema."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from server.api.context import Context
from server.domain.geo import Point

AppInfo = Info[Context, None]


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID


@strawberry.type(description="A WGS-84 coordinate.")
class GeoPoint:
    lat: float
    lng: float

    @staticmethod
    def of(point: Point) -> GeoPoint:
        return GeoPoint(lat=point.lat, lng=point.lng)


LOCALE_HELP = "zh-CN, zh-HK or en; overrides Accept-Language for the whole response."
LocaleArg = Annotated[str | None, strawberry.argument(description=LOCALE_HELP)]
