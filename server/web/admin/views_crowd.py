"""Crowd sensing of a district, for its operators and for admins: the sensors that feed it, and its live levels,
alert rules and recent alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.actor import Actor
from server.domain.crowd import alerts, live, sensors
from server.domain.crowd.models import LEVELS, SENSOR_KINDS
from server.domain.districts.models import Area, District
from server.domain.districts.repository import areas_by_district, districts_by_ids
from server.domain.errors import Invalid, NotFound
from server.domain.merchants.hours import SHANGHAI
from server.settings import Settings
from server.web.admin.common import Values, db_of, form_str, page, posted, render, see_other, signed_in

ALERT_LEVELS = LEVELS[1:]  # an alert can be raised at MODERATE, BUSY or PACKED
SUGGESTED_RULE = {"raise_at": "PACKED", "clear_below": "BUSY", "cooldown_minutes": "30"}
NAME_LIMIT = 80
# a cooldown the service always refuses: an unreadable number fails the save there, with the other fields' problems
UNREADABLE_MINUTES = -1


async def _district(request: Request, district_id: str) -> tuple[District, list[Area]]:
    """The district and its areas; ask only once the actor is known to work for it."""
    db = db_of(request)
    district = (await districts_by_ids(db, [district_id])).get(district_id)
    if district is None:
        raise NotFound(f"no district {district_id!r}")
    return district, (await areas_by_district(db, [district_id])).get(district_id, [])


# ---------------------------------------------------------------- sensors

def curl_example(origin: str, key: str, area_id: str) -> str:
    """A command that posts one reading with this key, to try the sensor's set-up from a terminal."""
    at = datetime.now(SHANGHAI).replace(microsecond=0).isoformat()
    body = json.dumps({"readings": [{"areaId": area_id, "at": at, "count": 123}]}, separators=(",", ":"))
    return (f"curl -X POST {origin}/ingest/crowd -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' -d '{body}'")


async def _sensors_page(request: Request, actor: Actor, district_id: str, context: dict[str, Any],
                        status_code: int = 200) -> Response:
    found = await sensors.of_district(db_of(request), actor, district_id)
    district, areas = await _district(request, district_id)
    return render(request, "sensors.html", {
        "district": district, "areas": areas, "area_names": {a.id: a.name for a in areas}, "sensors": found,
        "kinds": SENSOR_KINDS, "created": None, "key": "", "curl": "", "values": Values({"kind": SENSOR_KINDS[0]}),
        **context}, status_code)


@page
async def sensor_list(request: Request) -> Response:
    return await _sensors_page(request, await signed_in(request), request.path_params["district_id"], {})


@page
async def register_sensor(request: Request) -> Response:
    actor, form = await posted(request)
    db = db_of(request)
    district_id = request.path_params["district_id"]
    authz.district_operator(actor, [district_id], "districts")  # who may comes first
    _, areas = await _district(request, district_id)
    area_id, kind = form_str(form, "area_id", 100), form_str(form, "kind", 40)
    name = form_str(form, "name", 500).strip()
    problems: dict[str, str] = {}
    if area_id not in {a.id for a in areas}:
        problems["area_id"] = "unknown_area" if area_id else "required"
    if kind not in SENSOR_KINDS:
        problems["kind"] = "invalid_choice"
    if len(name) > NAME_LIMIT:
        problems["name"] = "too_long"
    try:
        if problems:
            raise Invalid({})
        sensor, key = await sensors.register(db, actor, area_id, kind, name)
    except Invalid as exc:
        return await _sensors_page(request, actor, district_id, {
            "values": Values.of_form(form), "errors": {**exc.fields, **problems}}, 422)
    # the key is shown in this response only; it is stored hashed
    origin = str(request.base_url).rstrip("/")
    return await _sensors_page(request, actor, district_id, {
        "created": sensor, "key": key, "curl": curl_example(origin, key, sensor.area_id)})


@page
async def revoke_sensor(request: Request) -> Response:
    actor, _ = await posted(request)
    db = db_of(request)
    district_id, sensor_id = request.path_params["district_id"], request.path_params["sensor_id"]
    found = {s.id: s for s in await sensors.of_district(db, actor, district_id)}  # who may comes first
    if sensor_id not in found:
        raise NotFound(f"no sensor {sensor_id!r} in {district_id!r}")
    if found[sensor_id].status != "revoked":  # a second click changes (and logs) nothing
        await sensors.revoke(db, actor, sensor_id)
    return see_other(f"/admin/districts/{district_id}/sensors?ok=sensor_revoked")


# ---------------------------------------------------------------- live levels, alert rules, recent alerts

def rule_values(rule: alerts.AlertRule | None) -> dict[str, str]:
    if rule is None:
        return dict(SUGGESTED_RULE)
    return {"raise_at": rule.raise_at, "clear_below": rule.clear_below, "cooldown_minutes": str(rule.cooldown_minutes)}


async def _crowd_page(request: Request, actor: Actor, district_id: str, context: dict[str, Any],
                      status_code: int = 200) -> Response:
    db = db_of(request)
    rules = await alerts.rules_of_district(db, actor, district_id)
    district, areas = await _district(request, district_id)
    settings: Settings = request.app.state.settings
    updates = await live.district_updates(db, {district_id}, datetime.now(UTC), settings.crowd_stale_minutes,
                                          settings.crowd_thresholds)
    update = updates[0] if updates else None
    return render(request, "crowd.html", {
        "district": district, "areas": areas, "area_names": {a.id: a.name for a in areas},
        "overall": update.district if update else None, "crowds": update.areas if update else {},
        "stale_minutes": settings.crowd_stale_minutes, "rules": rules, "levels": ALERT_LEVELS,
        "rule_values": {a.id: rule_values(rules.get(a.id)) for a in areas},
        "recent": await alerts.recent(db, actor, district_id), "failed": None, "submitted": {}, **context},
        status_code)


@page
async def crowd_page(request: Request) -> Response:
    return await _crowd_page(request, await signed_in(request), request.path_params["district_id"], {})


@page
async def save_rule(request: Request) -> Response:
    actor, form = await posted(request)
    db = db_of(request)
    district_id, area_id = request.path_params["district_id"], request.path_params["area_id"]
    authz.district_operator(actor, [district_id], "districts")  # who may comes first
    _, areas = await _district(request, district_id)
    if area_id not in {a.id for a in areas}:
        raise NotFound(f"no area {area_id!r} in {district_id!r}")
    submitted = {name: form_str(form, name, 40).strip() for name in SUGGESTED_RULE}
    problems: dict[str, str] = {}
    try:
        minutes = int(submitted["cooldown_minutes"])
    except ValueError:
        problems["cooldown_minutes"] = "not_a_number" if submitted["cooldown_minutes"] else "required"
        minutes = UNREADABLE_MINUTES
    try:
        await alerts.set_rule(db, actor, area_id, submitted["raise_at"], submitted["clear_below"], minutes)
    except Invalid as exc:
        errors = {**exc.fields, **problems}
        if (errors.get("clear_below") == "invalid_choice" and submitted["clear_below"] in ALERT_LEVELS
                and submitted["raise_at"] in ALERT_LEVELS):
            errors["clear_below"] = "clear_above_raise"  # both are levels: the order is what's wrong
        return await _crowd_page(request, actor, district_id, {"failed": area_id, "errors": errors,
                                                               "submitted": submitted}, 422)
    return see_other(f"/admin/districts/{district_id}/crowd?ok=saved#rule-{area_id}")
