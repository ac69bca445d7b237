"""The crowd area's MongoDB queries: sensors, readings, the live state, hourly statistics, alert rules and
alerts, and the few fields of areas and festivals the crowd reads on its hot path.

The nx-27017 workarounds sit next to the queries they serve, each pinned in tests/contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from server.services.mongo import Doc

# A backfill's hourly writes go in slices of this many, so that requests to the same (single-threaded
# embedded) server get their turn in between.
BULK_SLICE = 500
PLACE = {"district_id": 1, "capacity": 1}  # what the crowd needs of an area


async def places(db: AsyncDatabase[Doc], area_ids: list[str] | None = None) -> dict[str, Doc]:
    """District and capacity of these areas (None: every area), by area id."""
    query: Doc = {} if area_ids is None else {"_id": {"$in": area_ids}}
    return {d["_id"]: d async for d in db.areas.find(query, PLACE)}


async def places_of_districts(db: AsyncDatabase[Doc], district_ids: list[str]) -> list[Doc]:
    return [d async for d in db.areas.find({"district_id": {"$in": district_ids}}, PLACE)]


async def area_ids_except(db: AsyncDatabase[Doc], known: list[str]) -> list[str]:
    return [d["_id"] async for d in db.areas.find({"_id": {"$nin": known}}, {"_id": 1})]


async def festival_spans(db: AsyncDatabase[Doc], district_id: str) -> list[tuple[str, str]]:
    """(starts_on, ends_on) ISO days of the district's festivals."""
    cursor = db.festivals.find({"district_ids": {"$in": [district_id]}}, {"starts_on": 1, "ends_on": 1})
    return [(str(d["starts_on"]), str(d["ends_on"])) async for d in cursor]


async def active_sensors_named(db: AsyncDatabase[Doc], name: str) -> list[Doc]:
    return [d async for d in db.sensors.find({"name": name, "status": "active"})]


async def insert_readings(db: AsyncDatabase[Doc], docs: list[Doc]) -> set[int]:
    """Store the readings; the positions in `docs` of those already stored (a sensor re-sending a batch)."""
    duplicates: set[int] = set()
    if not docs:
        return duplicates
    try:
        await db.crowd_readings.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        for error in exc.details.get("writeErrors", []):
            if error.get("code") != 11000:
                raise
            duplicates.add(int(error["index"]))
    return duplicates


async def states_of(db: AsyncDatabase[Doc], area_ids: list[str]) -> dict[str, Doc]:
    """Each area's crowd_state document (latest view per sensor), by area id."""
    return {d["_id"]: d async for d in db.crowd_state.find({"_id": {"$in": area_ids}})}


async def set_sensor_views(db: AsyncDatabase[Doc], views: Mapping[tuple[str, str], Doc]) -> None:
    """One sub-document per (area, sensor): its own $set never disturbs the others; one write for all."""
    ops = [UpdateOne({"_id": area}, {"$set": {f"sensors.{sensor}": view}}, upsert=True)
           for (area, sensor), view in views.items()]
    if ops:
        await db.crowd_state.bulk_write(ops, ordered=False)


async def add_hourly(db: AsyncDatabase[Doc], percents: Mapping[tuple[str, int], list[float]]) -> None:
    """Add percents to each (area, hour as epoch seconds)'s sum and count.

    The hour is epoch seconds, not a datetime: a top-level datetime $set onto an existing document is not
    kept by nx-27017 (tests/contract: test_gap_top_level_datetime_set_on_an_existing_document)."""
    ops = [UpdateOne({"_id": f"{area}:{hour_ts}"}, {"$set": {"area_id": area, "hour_ts": hour_ts},
                                                   "$inc": {"sum": sum(v), "n": len(v)}}, upsert=True)
           for (area, hour_ts), v in percents.items()]
    for start in range(0, len(ops), BULK_SLICE):
        await db.crowd_hourly.bulk_write(ops[start:start + BULK_SLICE], ordered=False)


async def hourly_rows(db: AsyncDatabase[Doc], area_id: str, start_ts: int, end_ts: int) -> list[Doc]:
    """The area's hourly sums with hour_ts in [start_ts, end_ts)."""
    cursor = db.crowd_hourly.find({"area_id": area_id, "hour_ts": {"$gte": start_ts, "$lt": end_ts}})
    return [d async for d in cursor]


async def hourly_rows_at_least(db: AsyncDatabase[Doc], n: int) -> bool:
    return await db.crowd_hourly.count_documents({}, limit=n) >= n


async def insert_sensor(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.sensors.insert_one(doc)


async def sensor_doc(db: AsyncDatabase[Doc], sensor_id: str) -> Doc | None:
    return await db.sensors.find_one({"_id": sensor_id})


async def set_sensor_fields(db: AsyncDatabase[Doc], sensor_id: str, fields: Doc) -> None:
    await db.sensors.update_one({"_id": sensor_id}, {"$set": fields})


async def active_sensor_by_digest(db: AsyncDatabase[Doc], key_digest: str) -> Doc | None:
    return await db.sensors.find_one({"key_hash": key_digest, "status": "active"})


async def sensors_of_district(db: AsyncDatabase[Doc], district_id: str) -> list[Doc]:
    return [d async for d in db.sensors.find({"district_id": district_id}).sort([("area_id", 1), ("_id", 1)])]


async def alert_rule_doc(db: AsyncDatabase[Doc], area_id: str) -> Doc | None:
    return await db.crowd_alert_rules.find_one({"_id": area_id})


async def put_alert_rule(db: AsyncDatabase[Doc], doc: Doc) -> None:
    """The whole rule, replaced or created (no $setOnInsert: nx-27017 lacks it)."""
    await db.crowd_alert_rules.replace_one({"_id": doc["_id"]}, doc, upsert=True)


async def alert_rules_of_areas(db: AsyncDatabase[Doc], area_ids: list[str]) -> list[Doc]:
    return [d async for d in db.crowd_alert_rules.find({"_id": {"$in": area_ids}})]


async def alert_rules_of_district(db: AsyncDatabase[Doc], district_id: str) -> list[Doc]:
    return [d async for d in db.crowd_alert_rules.find({"district_id": district_id}).sort([("_id", 1)])]


async def move_alert_rule(db: AsyncDatabase[Doc], area_id: str, from_state: str, change: Doc) -> bool:
    """Compare-and-set on the rule's state: of two processes seeing the same crossing, one gets True."""
    result = await db.crowd_alert_rules.update_one({"_id": area_id, "state": from_state}, {"$set": change})
    return result.modified_count > 0


async def insert_alert(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.crowd_alerts.insert_one(doc)


async def recent_alerts(db: AsyncDatabase[Doc], district_id: str, limit: int) -> list[Doc]:
    cursor = db.crowd_alerts.find({"district_id": district_id}).sort([("at", -1), ("_id", 1)]).limit(limit)
    return [d async for d in cursor]


async def purge_readings(db: AsyncDatabase[Doc], before: datetime) -> int:
    """Readings older than `before`, for servers without TTL indexes (the embedded one): how many went."""
    result = await db.crowd_readings.delete_many({"at": {"$lt": before}})
    return result.deleted_count


async def alert_doc(db: AsyncDatabase[Doc], alert_id: str) -> Doc | None:
    return await db.crowd_alerts.find_one({"_id": alert_id})


async def mark_alert_handled(db: AsyncDatabase[Doc], alert_id: str, how: Doc) -> None:
    await db.crowd_alerts.update_one({"_id": alert_id}, {"$set": {"handled": how}})


async def names_of_place(db: AsyncDatabase[Doc], area_id: str, district_id: str) -> tuple[Doc, Doc]:
    """The area's and the district's documents with just their names ({} for one that is gone)."""
    area = await db.areas.find_one({"_id": area_id}, {"name": 1}) or {}
    district = await db.districts.find_one({"_id": district_id}, {"name": 1}) or {}
    return area, district
