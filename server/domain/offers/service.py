"""Offer writes: merchants draft, publish and withdraw; festival operators feature or reject."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.coupons.models import MAX_PER_DEVICE
from server.domain.errors import Invalid, NotFound
from server.domain.festivals import repository as festivals
from server.domain.forms import CODE, Problems
from server.domain.merchants import repository as merchants
from server.domain.offers import repository
from server.domain.offers.models import KINDS, Offer
from server.services.mongo import Doc
from server.services.public_cache import changed


@dataclass(slots=True)
class OfferInput:
    title: dict[str, str] = field(default_factory=dict)
    description: dict[str, str] = field(default_factory=dict)
    kind: str = "percent_off"
    percent_off: Any = None
    amount_off_fen: Any = None
    min_spend_fen: Any = None
    coupon_code: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    stock: Any = None
    festival_id: str | None = None
    per_device: Any = None  # coupons one device may claim; 1 when not said


async def _validate(db: AsyncDatabase[Doc], data: OfferInput, district_id: str) -> dict[str, Any]:
    p = Problems()
    title = p.localized("title", data.title, required=True, max_len=120)
    description = p.localized("description", data.description, required=False, max_len=2000)
    if data.kind not in KINDS:
        p.add("kind", "invalid_choice")
    percent = p.integer("percent_off", data.percent_off, 1, 90, required=data.kind == "percent_off")
    amount = p.integer("amount_off_fen", data.amount_off_fen, 1, 10**8, required=data.kind == "amount_off")
    min_spend = p.integer("min_spend_fen", data.min_spend_fen, 0, 10**9)
    stock = p.integer("stock", data.stock, 0, 10**7)
    per_device = p.integer("per_device", data.per_device, 1, MAX_PER_DEVICE)
    code = (data.coupon_code or "").strip().upper() or None
    if code is not None and not CODE.match(code):
        p.add("coupon_code", "coupon_format")
    valid_from, valid_until = p.moment("valid_from", data.valid_from), p.moment("valid_until", data.valid_until)
    if valid_from and valid_until and valid_until <= valid_from:
        p.add("valid_until", "ends_before_start")
    festival_id = data.festival_id or None
    if festival_id is not None:
        festival_districts = await festivals.districts_of_festival(db, festival_id)
        if festival_districts is None:
            p.add("festival_id", "unknown_festival")
        elif district_id not in festival_districts:
            p.add("festival_id", "festival_elsewhere")
    p.raise_if_any()
    assert valid_from is not None and valid_until is not None
    return {
        "title": title, "description": description, "kind": data.kind,
        "percent_off": percent if data.kind == "percent_off" else None,
        "amount_off_fen": amount if data.kind == "amount_off" else None, "min_spend_fen": min_spend,
        # whole seconds: the embedded server compares datetimes in range queries to the second, so offers
        # ending within one second of each other paged twice (tests/contract pins the gap)
        "coupon_code": code, "valid_from": valid_from.astimezone(UTC).replace(microsecond=0),
        "valid_until": valid_until.astimezone(UTC).replace(microsecond=0),
        "stock": stock, "festival_id": festival_id, "per_device": per_device or 1,
    }


async def _merchant_district(db: AsyncDatabase[Doc], merchant_id: str) -> str:
    district_id = await merchants.district_of_merchant(db, merchant_id)
    if district_id is None:
        raise NotFound(f"no merchant {merchant_id!r}")
    return district_id


async def _offer_doc(db: AsyncDatabase[Doc], offer_id: str) -> Doc:
    doc = await repository.offer_doc(db, offer_id)
    if doc is None:
        raise NotFound(f"no offer {offer_id!r}")
    return doc


async def create(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str, data: OfferInput) -> Offer:
    district_id = await _merchant_district(db, merchant_id)
    authz.merchant_only(actor, merchant_id, "offers")
    fields = await _validate(db, data, district_id)
    doc = {"_id": f"{merchant_id[:40]}-{uuid.uuid4().hex[:10]}", "merchant_id": merchant_id,
           "district_id": district_id, **fields, "status": "draft", "version": 1,
           "origin": "backoffice", "festival_decision": "none", "views": 0, "saves": 0,
           "created_at": datetime.now(UTC)}
    await repository.insert_offer(db, doc)
    await audit.record(db, actor, "offer.create", "offer", doc["_id"], [district_id], None, doc)
    await changed(*freshness.of_offer(merchant_id, district_id))
    return Offer.from_doc(doc)


async def _save(db: AsyncDatabase[Doc], actor: Actor, action: str, before: Doc, version: int,
                changes: dict[str, Any]) -> Offer:
    """Compare-and-set on `version`: the second of two concurrent saves gets a Conflict, never a silent overwrite."""
    after = await repository.save_offer(db, before, version, changes)
    await audit.record(db, actor, action, "offer", before["_id"], [before["district_id"]], before, after)
    # Edits, stock reaching zero, publish, withdraw, festival decisions: all shown to shoppers.
    await changed(*freshness.of_offer(before["merchant_id"], before["district_id"]))
    return Offer.from_doc(after)


async def update(db: AsyncDatabase[Doc], actor: Actor, offer_id: str, data: OfferInput, version: int) -> Offer:
    before = await _offer_doc(db, offer_id)
    authz.merchant_only(actor, before["merchant_id"], "offers")
    fields = await _validate(db, data, before["district_id"])
    return await _save(db, actor, "offer.update", before, version, fields)


TRANSITIONS = {"publish": ({"draft", "withdrawn"}, "published"), "withdraw": ({"published"}, "withdrawn")}


async def transition(db: AsyncDatabase[Doc], actor: Actor, offer_id: str, action: str, version: int) -> Offer:
    before = await _offer_doc(db, offer_id)
    authz.merchant_only(actor, before["merchant_id"], "offers")
    if action not in TRANSITIONS:
        raise Invalid({"action": "invalid_choice"})
    allowed_from, target = TRANSITIONS[action]
    if before.get("status", "published") not in allowed_from:
        raise Invalid({"status": f"cannot_{action}"})
    return await _save(db, actor, f"offer.{action}", before, version, {"status": target})


async def decide_for_festival(db: AsyncDatabase[Doc], actor: Actor, offer_id: str, decision: str,
                              version: int) -> Offer:
    """The festival's operator features an offer on the festival page, or rejects it from there."""
    before = await _offer_doc(db, offer_id)
    if not before.get("festival_id"):
        raise Invalid({"festival_id": "not_in_festival"})
    festival_districts = await festivals.districts_of_festival(db, before["festival_id"])
    authz.district_operator(actor, festival_districts or [], "festivals")
    if decision not in ("featured", "rejected", "none"):
        raise Invalid({"decision": "invalid_choice"})
    return await _save(db, actor, f"offer.{decision}", before, version, {"festival_decision": decision})


async def of_merchant(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str) -> list[Offer]:
    """Every offer of a shop, drafts included, for its back office."""
    district_id = await _merchant_district(db, merchant_id)
    authz.merchant_owner(actor, merchant_id, district_id, "offers")
    return await repository.of_merchant(db, merchant_id)


async def get_for_edit(db: AsyncDatabase[Doc], actor: Actor, offer_id: str) -> Offer:
    doc = await _offer_doc(db, offer_id)
    authz.merchant_owner(actor, doc["merchant_id"], doc["district_id"], "offers")
    return Offer.from_doc(doc)


async def count_interaction(db: AsyncDatabase[Doc], offer_id: str, kind: str) -> None:
    """A shopper viewed or saved a published offer (anonymous; counters only)."""
    if kind not in ("views", "saves"):
        raise Invalid({"kind": "invalid_choice"})
    if not await repository.count_interaction(db, offer_id, kind, datetime.now(UTC)):
        raise NotFound(f"no offer {offer_id!r}")
