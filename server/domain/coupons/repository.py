"""The coupons collection: one document per claimed code (`_id` is the code)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.domain.coupons.models import CLAIMED, MAX_PER_DEVICE, REDEEMED, Coupon
from server.services.mongo import Doc


def slot_of(offer_id: str, device_hash: str, n: int) -> str:
    """The n-th coupon a device may hold of an offer: a unique index on it makes the per-device limit hold
    under concurrent claims without a transaction."""
    return f"{offer_id}:{device_hash}:{n}"


async def held_by_device(db: AsyncDatabase[Doc], offer_id: str, device_hash: str) -> int:
    return await db.coupons.count_documents({"offer_id": offer_id, "device_hash": device_hash})


async def insert_claim(db: AsyncDatabase[Doc], doc: Doc, device_hash: str, first_slot: int, limit: int) -> bool:
    """Store a claim in the device's first free slot below `limit`; False when every slot is taken."""
    for n in range(first_slot, limit):
        try:
            await db.coupons.insert_one({**doc, "device_hash": device_hash, "slot": slot_of(doc["offer_id"],
                                                                                             device_hash, n)})
            return True
        except DuplicateKeyError:  # (a code drawn twice, odds 2^-44, lands here too: the claim is refused)
            continue
    return False


async def delete(db: AsyncDatabase[Doc], code: str) -> None:
    await db.coupons.delete_one({"_id": code})


async def by_code(db: AsyncDatabase[Doc], code: str) -> Coupon | None:
    doc = await db.coupons.find_one({"_id": code})
    return None if doc is None else Coupon.from_doc(doc)


async def of_device(db: AsyncDatabase[Doc], device_hash: str) -> list[Coupon]:
    """A device's coupons, newest claim first (a device holds at most a few dozen)."""
    cursor = db.coupons.find({"device_hash": device_hash}).sort([("claimed_at", -1)]).limit(MAX_PER_DEVICE * 10)
    return [Coupon.from_doc(d) async for d in cursor]


async def redeem(db: AsyncDatabase[Doc], code: str, at: datetime, by: str, form_token: str | None) -> Coupon | None:
    """claimed → redeemed in one conditional update, so of any number of concurrent attempts exactly one
    finds the coupon still claimed. None when it was not (already redeemed, or expired)."""
    # a timestamp, not a datetime: the embedded server stores a datetime given to $set as a string
    changes: dict[str, Any] = {"state": REDEEMED, "redeemed_ts": at.timestamp(), "redeemed_by": by}
    if form_token:
        changes["form_token"] = form_token
    won = await db.coupons.find_one_and_update({"_id": code, "state": CLAIMED, "expires_at": {"$gt": at}},
                                               {"$set": changes}, {"_id": 1})
    # read back rather than ReturnDocument.AFTER: the embedded server returns its dates as strings there
    return None if won is None else await by_code(db, code)


async def form_token_of(db: AsyncDatabase[Doc], code: str) -> str | None:
    doc = await db.coupons.find_one({"_id": code}, {"form_token": 1})
    return None if doc is None else doc.get("form_token")
