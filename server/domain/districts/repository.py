from __future__ import annotations

from collections import defaultdict

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.actor import Actor
from server.domain.districts.models import Area, District
from server.services.mongo import Doc


async def list_districts(db: AsyncDatabase[Doc]) -> list[District]:
    return [District.from_doc(d) async for d in db.districts.find({}).sort([("sort", 1), ("_id", 1)])]


async def districts_by_ids(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, District]:
    return {d["_id"]: District.from_doc(d) async for d in db.districts.find({"_id": {"$in": ids}})}


async def areas_by_ids(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, Area]:
    return {d["_id"]: Area.from_doc(d) async for d in db.areas.find({"_id": {"$in": ids}})}


async def areas_by_district(db: AsyncDatabase[Doc], district_ids: list[str]) -> dict[str, list[Area]]:
    out: dict[str, list[Area]] = defaultdict(list)
    cursor = db.areas.find({"district_id": {"$in": district_ids}}).sort([("sort", 1), ("_id", 1)])
    async for doc in cursor:
        out[doc["district_id"]].append(Area.from_doc(doc))
    return out


async def search_districts(db: AsyncDatabase[Doc], terms: list[str], limit: int) -> list[District]:
    cursor = db.districts.find({"search_terms": {"$all": terms}}).sort([("sort", 1), ("_id", 1)]).limit(limit)
    return [District.from_doc(d) async for d in cursor]


async def districts_of(db: AsyncDatabase[Doc], actor: Actor) -> list[District]:
    """The districts an actor works for, by id: every one for an admin."""
    if actor.is_admin:
        return await list_districts(db)
    found = await districts_by_ids(db, sorted(actor.district_ids))
    return [found[d] for d in sorted(found)]
