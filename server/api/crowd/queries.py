from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import strawberry

from server.api.common import AppInfo
from server.api.crowd.types import (
    AreaCrowd,
    CrowdAlertType,
    CrowdLevel,
    CrowdType,
    CrowdUpdate,
    ForecastPoint,
    HistoryBucket,
    HistoryPoint,
)
from server.api.errors import BAD_USER_INPUT, ApiError
from server.api.ids import key_of, not_found, to_global
from server.api.payloads import actor
from server.domain.crowd import alerts
from server.domain.crowd.live import crowd_from_json, district_updates
from server.domain.crowd.models import Crowd, level_of
from server.domain.crowd.outlook import area_outlook
from server.domain.crowd.state import hourly_history
from server.domain.merchants.hours import SHANGHAI

MAX_HISTORY = timedelta(days=92)


@strawberry.type
class CrowdQueries:
    @strawberry.field(description="Mean level per hour or per local day over [from, to), at most 92 days.")
    async def crowd_history(self, info: AppInfo, area_id: strawberry.ID,
                            from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime | None = None,
                            bucket: HistoryBucket = HistoryBucket.HOUR) -> list[HistoryPoint]:
        area = await info.context.loaders.area.load(key_of(area_id, "Area"))
        if area is None:
            raise not_found("Area", area_id)
        end = to or info.context.now
        if from_.tzinfo is None or end.tzinfo is None or not timedelta(0) < end - from_ <= MAX_HISTORY:
            raise ApiError(BAD_USER_INPUT, "from/to need UTC offsets, from before to, at most 92 days apart",
                           field="from")
        hours = await hourly_history(info.context.db, area.id, from_, end)
        thresholds = info.context.settings.crowd_thresholds
        if bucket is HistoryBucket.DAY:
            days: dict[datetime, list[float]] = defaultdict(list)
            for hour, percent in hours.items():
                local = hour.astimezone(SHANGHAI).replace(hour=0)
                days[local].append(percent)
            hours = {day: sum(v) / len(v) for day, v in days.items()}
        return [HistoryPoint(start=start, percent=round(p, 1), level=CrowdLevel(level_of(p, thresholds)))
                for start, p in sorted(hours.items())]

    @strawberry.field(description="The next 12 hours, hourly: history of the same weekday and hour, the festival "
                                  "calendar and the live level; each point with a confidence.")
    async def crowd_forecast(self, info: AppInfo, area_id: strawberry.ID) -> list[ForecastPoint]:
        area = await info.context.loaders.area.load(key_of(area_id, "Area"))
        if area is None:
            raise not_found("Area", area_id)
        live = await info.context.loaders.crowd.load(area.id)
        assert live is not None
        points = await area_outlook(info.context.db, area.id, area.district_id, info.context.now, live)
        thresholds = info.context.settings.crowd_thresholds
        return [ForecastPoint(hour=p.hour, percent=round(p.percent, 1), confidence=round(p.confidence, 2),
                              level=CrowdLevel(level_of(p.percent, thresholds))) for p in points]

    @strawberry.field(description="Crowd alerts of a district, newest first (its operators and admins).")
    async def crowd_alerts(self, info: AppInfo, district_id: strawberry.ID) -> list[CrowdAlertType]:
        who = await actor(info)
        found = await alerts.recent(info.context.db, who, key_of(district_id, "District"))
        return [CrowdAlertType(id=strawberry.ID(a.id), area_id=strawberry.ID(to_global("Area", a.area_id)),
                               level=CrowdLevel(a.level), percent=a.percent, at=a.at, kind=a.kind) for a in found]


@strawberry.type
class CrowdSubscriptions:
    @strawberry.subscription(description="The district's level now, then each time a reading changes it. A client "
                                         "that falls behind skips to the newest level.")
    async def crowd_updates(self, info: AppInfo, district_id: strawberry.ID) -> AsyncGenerator[CrowdUpdate, None]:
        key = key_of(district_id, "District")
        context = info.context
        district = await context.loaders.district.load(key)
        if district is None:
            raise not_found("District", district_id)
        hub = context.live_crowd()
        settings = context.settings
        subscription = hub.subscribe(key)
        try:
            for update in await district_updates(context.db, {key}, datetime.now(UTC), settings.crowd_stale_minutes,
                                                 settings.crowd_thresholds):
                yield _update(district_id, update.district, update.areas, context.now)
            while True:
                message = await subscription.next()
                built = message.get("_built")
                if built is None:  # the first subscriber to see a message builds it for all the others
                    built = message["_built"] = _update(
                        district_id, crowd_from_json(message["district"]),
                        {a: crowd_from_json(c) for a, c in message["areas"].items()},
                        datetime.fromisoformat(message["sentAt"]))
                yield built
        finally:
            subscription.close()


def _update(district_id: strawberry.ID, crowd: Crowd, areas: dict[str, Crowd], sent_at: datetime) -> CrowdUpdate:
    return CrowdUpdate(district_id=district_id, crowd=CrowdType.of(crowd), sent_at=sent_at,
                       areas=[AreaCrowd(area_id=strawberry.ID(to_global("Area", a)), crowd=CrowdType.of(c))
                              for a, c in areas.items()])
