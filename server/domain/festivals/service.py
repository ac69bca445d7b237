"""Festival writes: operators of every district a festival runs in, or admins."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.districts import repository as districts
from server.domain.errors import Invalid, NotFound
from server.domain.festivals import repository
from server.domain.festivals.models import KINDS, Festival, window
from server.domain.forms import Problems
from server.services.mongo import Doc
from server.services.public_cache import changed

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{2,79}$")


@dataclass(slots=True)
class FestivalInput:
    name: dict[str, str] = field(default_factory=dict)
    description: dict[str, str] = field(default_factory=dict)
    kind: str = "shopping"
    starts_on: date | None = None
    ends_on: date | None = None
    district_ids: list[str] = field(default_factory=list)


async def _validate(db: AsyncDatabase[Doc], data: FestivalInput) -> dict[str, Any]:
    p = Problems()
    name = p.localized("name", data.name, required=True, max_len=120)
    description = p.localized("description", data.description, required=False, max_len=2000)
    if data.kind not in KINDS:
        p.add("kind", "invalid_choice")
    if data.starts_on is None:
        p.add("starts_on", "required")
    if data.ends_on is None:
        p.add("ends_on", "required")
    if data.starts_on and data.ends_on and data.ends_on < data.starts_on:
        p.add("ends_on", "ends_before_start")
    known = await districts.existing_ids(db, data.district_ids)
    if not data.district_ids or set(data.district_ids) - known:
        p.add("district_ids", "unknown_district")
    p.raise_if_any()
    assert data.starts_on is not None and data.ends_on is not None
    starts_at, ends_at = window(data.starts_on, data.ends_on)
    return {"name": name, "description": description, "kind": data.kind, "starts_on": data.starts_on.isoformat(),
            "ends_on": data.ends_on.isoformat(), "starts_at": starts_at, "ends_at": ends_at,
            "district_ids": sorted(set(data.district_ids))}


async def create(db: AsyncDatabase[Doc], actor: Actor, slug: str, data: FestivalInput) -> Festival:
    authz.district_operator(actor, data.district_ids, "festivals")
    if not SLUG.match(slug):
        raise Invalid({"slug": "slug_format"})
    fields = await _validate(db, data)
    doc = {"_id": slug, **fields, "version": 1, "origin": "backoffice", "created_at": datetime.now(UTC)}
    try:
        await repository.insert_festival(db, doc)
    except repository.SlugTaken:
        raise Invalid({"slug": "slug_taken"}) from None
    await audit.record(db, actor, "festival.create", "festival", slug, fields["district_ids"], None, doc)
    await changed(freshness.FESTIVALS, *freshness.of_districts(fields["district_ids"]))
    return Festival.from_doc(doc)


async def update(db: AsyncDatabase[Doc], actor: Actor, festival_id: str, data: FestivalInput,
                 version: int) -> Festival:
    before = await repository.festival_doc(db, festival_id)
    if before is None:
        raise NotFound(f"no festival {festival_id!r}")
    # the operator must hold every district the festival runs in, before and after the edit
    authz.district_operator(actor, sorted(set(before["district_ids"]) | set(data.district_ids)), "festivals")
    fields = await _validate(db, data)
    after = await repository.save_festival(db, before, version, fields)
    await audit.record(db, actor, "festival.update", "festival", festival_id,
                       sorted(set(before["district_ids"]) | set(fields["district_ids"])), before, after)
    await changed(freshness.FESTIVALS, *freshness.of_districts({*before["district_ids"], *fields["district_ids"]}))
    return Festival.from_doc(after)


async def get_for_edit(db: AsyncDatabase[Doc], actor: Actor, festival_id: str) -> tuple[Festival, int]:
    doc = await repository.festival_doc(db, festival_id)
    if doc is None:
        raise NotFound(f"no festival {festival_id!r}")
    authz.district_operator(actor, list(doc["district_ids"]), "festivals")
    return Festival.from_doc(doc), int(doc.get("version") or 0)
