"""Per-area alert rules with hysteresis and a cooldown; alerts go to the worker on a Redis Stream."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain import authz
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.crowd import repository
from server.domain.crowd.models import LEVELS, Crowd
from server.domain.districts import repository as districts
from server.domain.errors import Invalid, NotFound
from server.services.mongo import Doc

STREAM = "crowd_alerts"


@dataclass(frozen=True, slots=True)
class AlertRule:
    area_id: str
    district_id: str
    raise_at: str  # a level: the alert fires when the area reaches it
    clear_below: str  # ... and re-arms only once the area falls below this one (hysteresis)
    cooldown_minutes: int
    state: str  # "armed" or "raised"

    @classmethod
    def from_doc(cls, doc: Doc) -> AlertRule:
        return cls(doc["_id"], doc["district_id"], doc["raise_at"], doc["clear_below"],
                   int(doc["cooldown_minutes"]), str(doc.get("state", "armed")))


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    area_id: str
    district_id: str
    level: str
    percent: float
    at: datetime
    kind: str  # "raised" or "cleared"


async def set_rule(db: AsyncDatabase[Doc], actor: Actor, area_id: str, raise_at: str, clear_below: str,
                   cooldown_minutes: int) -> AlertRule:
    district_id = await districts.district_of_area(db, area_id)
    if district_id is None:
        raise NotFound(f"no area {area_id!r}")
    authz.district_operator(actor, [district_id], "districts")
    problems = {}
    if raise_at not in LEVELS[1:]:
        problems["raise_at"] = "invalid_choice"
    if clear_below not in LEVELS[1:] or (raise_at in LEVELS and LEVELS.index(clear_below) > LEVELS.index(raise_at)):
        problems["clear_below"] = "invalid_choice"
    if not 0 <= cooldown_minutes <= 24 * 60:
        problems["cooldown_minutes"] = "out_of_range"
    if problems:
        raise Invalid(problems)
    before = await repository.alert_rule_doc(db, area_id)
    doc = {"_id": area_id, "district_id": district_id, "raise_at": raise_at, "clear_below": clear_below,
           "cooldown_minutes": cooldown_minutes, "state": (before or {}).get("state", "armed"),
           "raised": (before or {}).get("raised")}
    await repository.put_alert_rule(db, doc)
    await audit.record(db, actor, "crowd.alert_rule", "area", area_id, [district_id], before, doc)
    return AlertRule.from_doc(doc)


async def evaluate(db: AsyncDatabase[Doc], redis: Redis, crowds: dict[str, Crowd], now: datetime) -> list[Alert]:
    """Crossings for these areas' fresh levels; each raise is recorded and queued for the worker."""
    rules = await repository.alert_rules_of_areas(db, sorted(crowds))
    fired: list[Alert] = []
    for rule in rules:
        crowd = crowds[rule["_id"]]
        if crowd.stale or crowd.updated_at is None:
            continue
        rank = LEVELS.index(crowd.level)
        state = rule.get("state", "armed")
        last: datetime | None = (rule.get("raised") or {}).get("at")
        cooled = last is None or now - last >= timedelta(minutes=int(rule["cooldown_minutes"]))
        change: dict[str, Any] | None = None
        if state == "armed" and rank >= LEVELS.index(rule["raise_at"]) and cooled:
            change, kind = {"state": "raised", "raised": {"at": now}}, "raised"  # nested: see domain/versioned
        elif state == "raised" and rank < LEVELS.index(rule["clear_below"]):
            change, kind = {"state": "armed"}, "cleared"
        if change is None:
            continue
        # compare-and-set on the state: two web processes seeing the same crossing record it once
        if not await repository.move_alert_rule(db, rule["_id"], state, change):
            continue
        alert = Alert(uuid.uuid4().hex, rule["_id"], rule["district_id"], crowd.level, crowd.percent, now, kind)
        await repository.insert_alert(db, {"_id": alert.id, "area_id": alert.area_id, "district_id": alert.district_id,
                                           "level": alert.level, "percent": alert.percent, "at": now, "kind": kind})
        if kind == "raised":
            await redis.xadd(STREAM, {"alert_id": alert.id, "area_id": alert.area_id,
                                      "district_id": alert.district_id, "level": alert.level},
                             maxlen=100_000, approximate=True)
        fired.append(alert)
    return fired


async def recent(db: AsyncDatabase[Doc], actor: Actor, district_id: str, limit: int = 50) -> list[Alert]:
    authz.district_operator(actor, [district_id], "districts")
    return [Alert(d["_id"], d["area_id"], d["district_id"], d["level"], float(d["percent"]), d["at"], d["kind"])
            for d in await repository.recent_alerts(db, district_id, limit)]



async def rules_of_district(db: AsyncDatabase[Doc], actor: Actor, district_id: str) -> dict[str, AlertRule]:
    """The alert rule of each area of the district that has one, by area id (read-only)."""
    authz.district_operator(actor, [district_id], "districts")
    return {d["_id"]: AlertRule.from_doc(d) for d in await repository.alert_rules_of_district(db, district_id)}
