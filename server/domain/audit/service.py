"""Reading the audit log: operators see their districts' entries, admins all (there is no writing here)."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz
from server.domain.actor import Actor
from server.domain.audit.repository import AuditEntry, entries
from server.services.mongo import Doc


async def visible_to(db: AsyncDatabase[Doc], actor: Actor, limit: int = 100) -> list[AuditEntry]:
    authz.require_scope(actor, "districts")
    if actor.is_admin:
        return await entries(db, None, limit)
    authz.district_operator(actor, sorted(actor.district_ids), "districts")
    return await entries(db, sorted(actor.district_ids), limit)
