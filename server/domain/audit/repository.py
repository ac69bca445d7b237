"""The audit log: append-only; nothing in the app updates or deletes an entry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.actor import Actor
from server.services.mongo import Doc

REDACTED = {"password_hash", "token_hash", "search_terms", "title_terms", "geo_cells", "open_slots", "content_hash"}


def _clean(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in REDACTED}


async def record(
    db: AsyncDatabase[Doc], actor: Actor, action: str, target_type: str, target_id: str,
    district_ids: list[str], before: dict[str, Any] | None, after: dict[str, Any] | None,
) -> None:
    await db.audit.insert_one({
        "_id": uuid.uuid4().hex, "at": datetime.now(UTC), "actor_id": actor.account_id,
        "actor": actor.label(), "action": action, "target_type": target_type, "target_id": target_id,
        "district_ids": district_ids, "before": _clean(before), "after": _clean(after),
    })


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def entries(db: AsyncDatabase[Doc], district_ids: list[str] | None, limit: int = 100) -> list[AuditEntry]:
    """Newest first; None means every district (admins)."""
    query: dict[str, Any] = {} if district_ids is None else {"district_ids": {"$in": district_ids}}
    cursor = db.audit.find(query).sort([("at", -1), ("_id", 1)]).limit(limit)
    return [AuditEntry(d["_id"], d["at"], d["actor"], d["action"], d["target_type"], d["target_id"],
                       d.get("before"), d.get("after")) async for d in cursor]
