from __future__ import annotations

import strawberry

from server.api.common import AppInfo
from server.api.crowd.types import CrowdLevel
from server.api.ids import key_of, to_global
from server.api.payloads import FieldError, actor, attempt
from server.domain.crowd import alerts, sensors


@strawberry.type
class SensorPayload:
    id: str | None
    area_id: strawberry.ID | None
    kind: str | None
    key: str | None = strawberry.field(description="The sensor's secret for POST /ingest/crowd; shown only once.")
    errors: list[FieldError]


@strawberry.type
class AlertRulePayload:
    area_id: strawberry.ID | None
    errors: list[FieldError]


@strawberry.type
class CrowdMutations:
    @strawberry.mutation(description="An operator of the area's district (or an admin) registers a people counter.")
    async def register_sensor(self, info: AppInfo, area_id: strawberry.ID, kind: str, name: str = "") -> SensorPayload:
        who = await actor(info)
        result, errors, _ = await attempt(info, sensors.register(info.context.db, who, key_of(area_id, "Area"),
                                                                 kind, name))
        if result is None:
            return SensorPayload(id=None, area_id=None, kind=None, key=None, errors=errors)
        sensor, key = result
        return SensorPayload(id=sensor.id, area_id=strawberry.ID(to_global("Area", sensor.area_id)), kind=sensor.kind,
                             key=key, errors=[])

    @strawberry.mutation
    async def revoke_sensor(self, info: AppInfo, id: str) -> list[FieldError]:
        who = await actor(info)
        _, errors, _ = await attempt(info, sensors.revoke(info.context.db, who, id[:40]))
        return errors

    @strawberry.mutation(description="Alert when the area reaches `raiseAt`; re-arm once it falls below `clearBelow`.")
    async def set_crowd_alert_rule(self, info: AppInfo, area_id: strawberry.ID, raise_at: CrowdLevel,
                                   clear_below: CrowdLevel, cooldown_minutes: int = 30) -> AlertRulePayload:
        who = await actor(info)
        result, errors, _ = await attempt(info, alerts.set_rule(info.context.db, who, key_of(area_id, "Area"),
                                                                raise_at.value, clear_below.value, cooldown_minutes))
        return AlertRulePayload(area_id=area_id if result else None, errors=errors)
