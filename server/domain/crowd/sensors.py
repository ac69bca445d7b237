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
from server.domain.crowd import repository
from server.domain.crowd.models import SENSOR_KINDS
from server.domain.digests import digest
from server.domain.districts import repository as districts
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
    district_id = await districts.district_of_area(db, area_id)
    if district_id is None:
        raise NotFound(f"no area {area_id!r}")
    authz.district_operator(actor, [district_id], "districts")
    if kind not in SENSOR_KINDS:
        raise Invalid({"kind": "invalid_choice"})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    doc: Doc = {"_id": uuid.uuid4().hex[:12], "key_hash": digest(key), "area_id": area_id,
           "district_id": district_id, "kind": kind, "name": name.strip()[:80] or kind, "status": "active",
           "created_at": datetime.now(UTC), "created_by": actor.account_id}
    await repository.insert_sensor(db, doc)
    await audit.record(db, actor, "sensor.register", "sensor", doc["_id"], [district_id], None, doc)
    return Sensor.from_doc(doc), key


async def revoke(db: AsyncDatabase[Doc], actor: Actor, sensor_id: str) -> Sensor:
    doc = await repository.sensor_doc(db, sensor_id)
    if doc is None:
        raise NotFound(f"no sensor {sensor_id!r}")
    authz.district_operator(actor, [doc["district_id"]], "districts")
    revoked = {"status": "revoked", "revoked": {"at": datetime.now(UTC)}}
    await repository.set_sensor_fields(db, sensor_id, revoked)
    after = {**doc, "status": "revoked"}
    await audit.record(db, actor, "sensor.revoke", "sensor", sensor_id, [doc["district_id"]], doc, after)
    return Sensor.from_doc(after)


async def by_key(db: AsyncDatabase[Doc], key: str) -> Sensor | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    doc = await repository.active_sensor_by_digest(db, digest(key))
    return Sensor.from_doc(doc) if doc else None


async def of_district(db: AsyncDatabase[Doc], actor: Actor, district_id: str) -> list[Sensor]:
    authz.district_operator(actor, [district_id], "districts")
    return [Sensor.from_doc(d) for d in await repository.sensors_of_district(db, district_id)]
