"""Sensors: registered per area by its district's operator (or an admin); keys stored hashed."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.crowd.models import SENSOR_KINDS
from server.domain.digests import digest
from server.domain.errors import Invalid, NotFound
from server.services.mongo import Doc

KEY_PREFIX = "sqs_"


@dataclass(frozen=True, slots=True)
class Sensor:
    id: str
    area_id: str
    district_id: str
    kind: str
    name: str
    status: str

    @classmethod
    def from_doc(cls, doc: Doc) -> Sensor:
        return cls(doc["_id"], doc["area_id"], doc["district_id"], str(doc["kind"]), doc.get("name", ""),
                   str(doc.get("status", "active")))


async def register(db: AsyncDatabase[Doc], actor: Actor, area_id: str, kind: str, name: str) -> tuple[Sensor, str]:
    """The new sensor and its secret key, shown this once."""
    area = await db.areas.find_one({"_id": area_id}, {"district_id": 1})
    if area is None:
        raise NotFound(f"no area {area_id!r}")
    authz.district_operator(actor, [area["district_id"]], "districts")
    if kind not in SENSOR_KINDS:
        raise Invalid({"kind": "invalid_choice"})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    doc = {"_id": uuid.uuid4().hex[:12], "key_hash": digest(key), "area_id": area_id,
           "district_id": area["district_id"], "kind": kind, "name": name.strip()[:80] or kind, "status": "active",
           "created_at": datetime.now(UTC), "created_by": actor.account_id}
    await db.sensors.insert_one(doc)
    await audit.record(db, actor, "sensor.register", "sensor", doc["_id"], [area["district_id"]], None, doc)
    return Sensor.from_doc(doc), key


async def revoke(db: AsyncDatabase[Doc], actor: Actor, sensor_id: str) -> Sensor:
    doc = await db.sensors.find_one({"_id": sensor_id})
    if doc is None:
        raise NotFound(f"no sensor {sensor_id!r}")
    authz.district_operator(actor, [doc["district_id"]], "districts")
    revoked = {"status": "revoked", "revoked": {"at": datetime.now(UTC)}}
    await db.sensors.update_one({"_id": sensor_id}, {"$set": revoked})
    after = {**doc, "status": "revoked"}
    await audit.record(db, actor, "sensor.revoke", "sensor", sensor_id, [doc["district_id"]], doc, after)
    return Sensor.from_doc(after)


async def by_key(db: AsyncDatabase[Doc], key: str) -> Sensor | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    doc = await db.sensors.find_one({"key_hash": digest(key), "status": "active"})
    return Sensor.from_doc(doc) if doc else None


async def of_district(db: AsyncDatabase[Doc], actor: Actor, district_id: str) -> list[Sensor]:
    authz.district_operator(actor, [district_id], "districts")
    cursor = db.sensors.find({"district_id": district_id}).sort([("area_id", 1), ("_id", 1)])
    return [Sensor.from_doc(d) async for d in cursor]
