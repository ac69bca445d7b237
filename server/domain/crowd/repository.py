"""The crowd area's MongoDB queries for sensors, alert rules and alerts.

Readings, levels and hourly statistics keep their bulk writes in ingest.py and state.py, next to the
nx-27017 workarounds they carry (see tests/contract).
"""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.services.mongo import Doc


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
