"""Popular times and calmer alternatives: the fields Area and District resolve through these."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from server.api.common import AppInfo
from server.api.crowd.types import CrowdLevel
from server.api.errors import DATE_OUT_OF_RANGE, PAGE_SIZE_EXCEEDED, ApiError
from server.domain.crowd import wording
from server.domain.crowd.alternatives import Place, calmer_alternatives
from server.domain.crowd.models import Crowd, level_of
from server.domain.crowd.outlook import DAYS_AHEAD, DayOutlook, in_range, local_today, popular_times
from server.domain.districts import repository as districts
from server.domain.districts.models import Area
from server.domain.i18n import pick
from server.domain.merchants import repository as merchants

if TYPE_CHECKING:
    from server.api.districts.types import AreaType

MAX_ALTERNATIVES = 10


@strawberry.type(description="One local hour of a day: its usual level, or the live one on the hour now running.")
class PopularHourType:
    hour: int = strawberry.field(description="Local hour (Asia/Shanghai), 0–23.")
    starts_at: datetime
    percent: float = strawberry.field(description="The live percent when isLive, else the usual one.")
    typical_percent: float = strawberry.field(description="What this hour usually sees (festival and holiday aware).")
    level: CrowdLevel
    is_live: bool


@strawberry.type(description="A span of local hours, from `start` to `end` (exclusive).")
class HourRange:
    start: int
    end: int
    label: str = strawberry.field(description="e.g. 10:00–12:00")


@strawberry.enum(description="The shape of the coming hours (today) or of a usual day (later days).")
class CrowdOutlookKind(Enum):
    PEAK = "peak"
    DIP = "dip"
    EMPTYING = "emptying"
    QUIET = "quiet"
    STEADY = "steady"


@strawberry.type(description="A day of the coming week hour by hour, its calmest good hours and a one-line summary.")
class PopularTimes:
    date: date
    day_kind: str = strawberry.field(description="holiday, festival, weekend or weekday.")
    hours: list[PopularHourType]
    best_hours: HourRange | None = strawberry.field(
        description="The calmest two hours while shops are open (today: not yet begun); null when none is left.")
    summary: str = strawberry.field(description="Today: what the next hours hold; a later day: its usual peak.")
    summary_kind: CrowdOutlookKind

    @staticmethod
    def of(outlook: DayOutlook, locale: str, thresholds: tuple[int, int, int]) -> PopularTimes:
        best = None
        if outlook.best is not None:
            start, end = outlook.best
            best = HourRange(start=start, end=end, label=f"{start:02d}:00–{end:02d}:00")
        return PopularTimes(
            date=outlook.day, day_kind=outlook.day_kind,
            hours=[PopularHourType(hour=h.hour, starts_at=h.starts_at, percent=h.percent, typical_percent=h.typical,
                                   level=CrowdLevel(level_of(h.percent, thresholds)), is_live=h.live)
                   for h in outlook.hours],
            best_hours=best,
            summary=wording.summary(outlook.shape, locale, outlook.day, outlook.day_kind, outlook.upcoming),
            summary_kind=CrowdOutlookKind(outlook.shape.kind))


def _check_day(day: date, now: datetime) -> None:
    if not in_range(day, now):
        today = local_today(now)
        raise ApiError(DATE_OUT_OF_RANGE, f"date must be from {today} to {today + timedelta(days=DAYS_AHEAD)} "
                                          "(today in Shenzhen and the six days after)", field="date")


async def area_popular_times(info: AppInfo, area: Area, day: date) -> PopularTimes:
    context = info.context
    _check_day(day, context.now)
    crowd = await context.loaders.crowd.load(area.id)
    assert crowd is not None
    outlook = await popular_times(context.db, [(area.id, area.capacity, crowd)], area.district_id, crowd, day,
                                  context.now)
    return PopularTimes.of(outlook, context.locale, context.settings.crowd_thresholds)


async def district_popular_times(info: AppInfo, district_id: str, live: Crowd, day: date) -> PopularTimes:
    context = info.context
    _check_day(day, context.now)
    areas = await context.loaders.areas_of_district.load(district_id)
    crowds = await context.loaders.crowd.load_many([a.id for a in areas])
    parts = [(a.id, a.capacity, c) for a, c in zip(areas, crowds, strict=True) if c is not None]
    outlook = await popular_times(context.db, parts, district_id, live, day, context.now)
    return PopularTimes.of(outlook, context.locale, context.settings.crowd_thresholds)


@strawberry.type(description="A calmer place within walking distance, with shops of the same kinds.")
class CalmerAlternative:
    walking_meters: int
    walking_minutes: int
    categories: list[str] = strawberry.field(description="Names of the categories both places have shops of.")
    explanation: str = strawberry.field(description="One line: walk, how calm it is now, what it also has.")
    area_key: strawberry.Private[Area]

    @strawberry.field
    def area(self, info: AppInfo) -> Annotated[AreaType, strawberry.lazy("server.api.districts.types")]:
        from server.api.districts.types import AreaType

        return AreaType.of(self.area_key, info.context.locale)


def _place(area: Area, crowd: Crowd, categories: dict[str, int]) -> Place:
    return Place(area.id, area.district_id, area.center, crowd.percent, crowd.level,
                 known=crowd.updated_at is not None and not crowd.stale, categories=frozenset(categories))


async def area_alternatives(info: AppInfo, area: Area, first: int) -> list[CalmerAlternative]:
    if not 0 < first <= MAX_ALTERNATIVES:
        raise ApiError(PAGE_SIZE_EXCEEDED, f"first must be from 1 to {MAX_ALTERNATIVES}", field="first")
    context = info.context
    every = await districts.all_areas(context.db)
    by_id = {a.id: a for a in every}
    crowds = dict(zip(by_id, await context.loaders.crowd.load_many(list(by_id)), strict=True))
    categories = await merchants.categories_by_area(context.db, list(by_id))
    here = crowds.get(area.id)
    if here is None or here.updated_at is None or here.stale:
        return []  # without a fresh level here, "calmer" means nothing
    origin = _place(area, here, categories.get(area.id, {}))
    candidates = [_place(a, c, categories.get(a.id, {})) for a in every if (c := crowds.get(a.id)) is not None]
    ranked = calmer_alternatives(origin, candidates, first, categories.get(area.id, {}))
    out = []
    for alt in ranked:
        found = await context.loaders.category_name.load_many(list(alt.shared))
        names = [pick(n, context.locale) if n else slug for slug, n in zip(alt.shared, found, strict=True)]
        text = wording.explanation(context.locale, alt.minutes, alt.place.level, alt.place.percent, here.percent,
                                   names[:3])
        out.append(CalmerAlternative(walking_meters=alt.walking_m, walking_minutes=alt.minutes, categories=names,
                                     explanation=text, area_key=by_id[alt.place.area_id]))
    return out
