"""Area writes: operators set the capacities crowd levels are measured against."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz
from server.domain.accounts.models import Actor
from server.domain.audit import repository as audit
from server.domain.districts.models import Area
from server.domain.errors import Conflict, NotFound
from server.domain.forms import Problems
from server.services.mongo import Doc


async def set_capacity(db: AsyncDatabase[Doc], actor: Actor, area_id: str, capacity: object, version: int) -> Area:
    before = await db.areas.find_one({"_id": area_id})
    if before is None:
        raise NotFound(f"no area {area_id!r}")
    authz.district_operator(actor, [before["district_id"]], "districts")
    p = Problems()
    value = p.integer("capacity", capacity, 1, 2_000_000, required=True)
    p.raise_if_any()
    changes = {"capacity": value, "version": version + 1, "origin": "backoffice", "updated_at": datetime.now(UTC)}
    result = await db.areas.update_one({"_id": area_id, "version": version}, {"$set": changes})
    if result.matched_count == 0:
        current = await db.areas.find_one({"_id": area_id}) or {}
        raise Conflict(current)
    after = {**before, **changes}
    await audit.record(db, actor, "area.capacity", "area", area_id, [before["district_id"]], before, after)
    return Area.from_doc(after)
