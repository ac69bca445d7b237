"""Area writes: operators set the capacities crowd levels are measured against."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.districts import repository
from server.domain.districts.models import Area
from server.domain.errors import NotFound
from server.domain.forms import Problems
from server.services.mongo import Doc
from server.services.public_cache import changed


async def set_capacity(db: AsyncDatabase[Doc], actor: Actor, area_id: str, capacity: object, version: int) -> Area:
    before = await repository.area_doc(db, area_id)
    if before is None:
        raise NotFound(f"no area {area_id!r}")
    authz.district_operator(actor, [before["district_id"]], "districts")
    p = Problems()
    value = p.integer("capacity", capacity, 1, 2_000_000, required=True)
    p.raise_if_any()
    after = await repository.save_area(db, before, version, {"capacity": value})
    await audit.record(db, actor, "area.capacity", "area", area_id, [before["district_id"]], before, after)
    await changed(*freshness.of_districts([before["district_id"]]))
    return Area.from_doc(after)


async def areas_for_edit(db: AsyncDatabase[Doc], actor: Actor) -> list[tuple[Area, int]]:
    """The areas an operator may set capacities of (admins: all), with their versions (read only)."""
    authz.require_scope(actor, "districts")
    if actor.is_admin:
        return await repository.areas_with_versions(db, None)
    authz.district_operator(actor, sorted(actor.district_ids), "districts")
    return await repository.areas_with_versions(db, sorted(actor.district_ids))
