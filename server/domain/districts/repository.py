from __future__ import annotations

from collections import defaultdict

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import versioned
from server.domain.actor import Actor
from server.domain.districts.models import Area, District
from server.services.mongo import Doc


async def any_district(db: AsyncDatabase[Doc]) -> bool:
    """Whether any content was ever loaded (single-machine mode's first start has none)."""
    return await db.districts.find_one({}, {"_id": 1}) is not None


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


async def district_boundary(db: AsyncDatabase[Doc], district_id: str) -> list[list[float]] | None:
    """The outer ring of the district's boundary polygon ([lng, lat] pairs), None for no such district."""
    doc = await db.districts.find_one({"_id": district_id}, {"boundary": 1})
    return doc["boundary"]["coordinates"][0] if doc else None


async def area_in_district(db: AsyncDatabase[Doc], area_id: str, district_id: str) -> bool:
    return await db.areas.find_one({"_id": area_id, "district_id": district_id}, {"_id": 1}) is not None


async def area_doc(db: AsyncDatabase[Doc], area_id: str) -> Doc | None:
    return await db.areas.find_one({"_id": area_id})


async def save_area(db: AsyncDatabase[Doc], before: Doc, version: int, changes: Doc) -> Doc:
    return await versioned.save(db.areas, before, version, changes)


async def existing_ids(db: AsyncDatabase[Doc], ids: list[str]) -> set[str]:
    return {d["_id"] async for d in db.districts.find({"_id": {"$in": ids}}, {"_id": 1})}


async def areas_with_versions(db: AsyncDatabase[Doc], district_ids: list[str] | None) -> list[tuple[Area, int]]:
    """The areas of these districts (None: all), by district, with their versions for an edit form."""
    query: dict[str, object] = {} if district_ids is None else {"district_id": {"$in": district_ids}}
    cursor = db.areas.find(query).sort([("district_id", 1), ("sort", 1), ("_id", 1)])
    return [(Area.from_doc(d), int(d.get("version") or 0)) async for d in cursor]


async def all_areas(db: AsyncDatabase[Doc]) -> list[Area]:
    """Every area of every district (a few dozen): the candidates of calmer alternatives."""
    return [Area.from_doc(d) async for d in db.areas.find({}).sort([("district_id", 1), ("_id", 1)])]


async def district_of_area(db: AsyncDatabase[Doc], area_id: str) -> str | None:
    doc = await db.areas.find_one({"_id": area_id}, {"district_id": 1})
    return str(doc["district_id"]) if doc else None
