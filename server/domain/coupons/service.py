"""Coupons: a shopper's device claims one of an offer; the offer's merchant redeems it at the counter.

Claims are anonymous: a device is known by the random key the PWA keeps (its hash is stored, so the
coupons collection cannot be used to list what a device holds). Redemptions are signed in (a back-office
session or the merchant's API token) and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.coupons import repository
from server.domain.coupons.models import REDEEMED, Coupon, CouponError, device_hash, new_code, normalise, problem
from server.domain.merchants import repository as merchants
from server.domain.offers import repository as offers
from server.domain.offers.models import Offer
from server.observability.metrics import COUPON_ATTEMPTS
from server.services.mongo import Doc
from server.services.public_cache import changed

GUESSES = frozenset({"INVALID_CODE", "NOT_YOUR_OFFER"})  # refusals that count towards the guessing limit


@dataclass(frozen=True, slots=True)
class Checked:
    """A coupon as the counter sees it before and after confirming: the coupon, its offer and shop."""

    coupon: Coupon
    offer: Offer
    shop: dict[str, str]


def _device(device_key: str) -> str:
    hashed = device_hash(device_key)
    if hashed is None:
        raise CouponError("INVALID_DEVICE", "coupon_bad_device")
    return hashed


async def claim(db: AsyncDatabase[Doc], device_key: str, offer_id: str, now: datetime) -> Checked:
    """One coupon of a published, valid offer for this device, within its per-device limit and the stock."""
    device = _device(device_key)
    offer = (await offers.by_ids(db, [offer_id])).get(offer_id)
    if offer is None or not offer.active_at(now):
        raise CouponError("NOT_CLAIMABLE", "coupon_not_claimable")
    held = await repository.held_by_device(db, offer.id, device)
    if held >= offer.per_device:
        raise CouponError("LIMIT_REACHED", "coupon_limit_reached", limit=offer.per_device)
    code = new_code()
    doc: Doc = {"_id": code, "offer_id": offer.id, "merchant_id": offer.merchant_id,
                "district_id": offer.district_id, "claimed_at": now, "expires_at": offer.valid_until,
                "state": "claimed"}
    # The device's slot first (a unique index), then the stock (a conditional $inc): each step is atomic,
    # and a claim that loses the second gives the first back.
    if not await repository.insert_claim(db, doc, device, held, offer.per_device):
        raise CouponError("LIMIT_REACHED", "coupon_limit_reached", limit=offer.per_device)
    after = await offers.take_one(db, offer, now)
    if after is None:
        await repository.delete(db, code)
        raise CouponError("OUT_OF_STOCK", "coupon_out_of_stock")
    await offers.bump_daily(db, offer, "claims", now)
    if after.stock == 0:  # shoppers' cached pages still offer it: they must see it is gone
        await changed(*freshness.of_offer(offer.merchant_id, offer.district_id))
    return Checked(Coupon.from_doc(doc), after, await _shop(db, offer.merchant_id))


async def of_device(db: AsyncDatabase[Doc], device_key: str) -> list[Coupon]:
    return await repository.of_device(db, _device(device_key))


async def _shop(db: AsyncDatabase[Doc], merchant_id: str) -> dict[str, str]:
    doc = await merchants.merchant_doc(db, merchant_id)
    return dict(doc["name"]) if doc else {"zh-CN": merchant_id}


def _refuse(code: str, key: str, **values: object) -> CouponError:
    COUPON_ATTEMPTS.labels(outcome=code).inc()
    return CouponError(code, key, **values)


def _state_error(checked: Checked, now: datetime) -> CouponError | None:
    c = checked.coupon
    if c.state == REDEEMED:
        return _refuse("ALREADY_REDEEMED", "coupon_already_redeemed", when=c.redeemed_at, shop=checked.shop)
    if c.expired_at(now):
        return _refuse("COUPON_EXPIRED", "coupon_expired", when=c.expires_at)
    return None


async def inspect(db: AsyncDatabase[Doc], actor: Actor, typed: str, now: datetime) -> Checked:
    """What the counter shows before confirming: the coupon of one of the actor's shops, still redeemable."""
    checked = await _find(db, actor, typed)
    error = _state_error(checked, now)
    if error is not None:
        raise error
    return checked


async def _find(db: AsyncDatabase[Doc], actor: Actor, typed: str) -> Checked:
    authz.require_scope(actor, "offers")
    code = normalise(typed)
    why = problem(code)
    if why is not None:
        raise _refuse("INVALID_CODE", f"coupon_{why}")
    coupon = await repository.by_code(db, code)
    if coupon is None:
        raise _refuse("INVALID_CODE", "coupon_unknown")
    if not (actor.is_admin or (actor.role == "merchant" and coupon.merchant_id in actor.merchant_ids)):
        raise _refuse("NOT_YOUR_OFFER", "coupon_not_your_offer")
    offer_doc = await offers.offer_doc(db, coupon.offer_id)
    if offer_doc is None:
        raise _refuse("INVALID_CODE", "coupon_unknown")
    return Checked(coupon, Offer.from_doc(offer_doc), await _shop(db, coupon.merchant_id))


async def redeem(db: AsyncDatabase[Doc], actor: Actor, typed: str, now: datetime,
                 form_token: str | None = None) -> Checked:
    """claimed → redeemed, once: of concurrent attempts exactly one wins, the others get ALREADY_REDEEMED
    (when and where). A repeat of the same back-office form (a double tap) gets the first one's answer."""
    checked = await _find(db, actor, typed)
    code = checked.coupon.code
    done = await repository.redeem(db, code, now, actor.label(), form_token)
    if done is None:
        current = Checked(await repository.by_code(db, code) or checked.coupon, checked.offer, checked.shop)
        if form_token and current.coupon.state == REDEEMED and await repository.form_token_of(db, code) == form_token:
            return current
        raise _state_error(current, now) or _refuse("ALREADY_REDEEMED", "coupon_already_redeemed",
                                                     when=now, shop=checked.shop)
    COUPON_ATTEMPTS.labels(outcome="REDEEMED").inc()
    await offers.count_redemption(db, checked.offer.id)
    await offers.bump_daily(db, checked.offer, "redemptions", now)
    await audit.record(db, actor, "coupon.redeem", "coupon", code, [checked.coupon.district_id],
                       {"state": checked.coupon.state, "offer_id": checked.offer.id},
                       {"state": REDEEMED, "offer_id": checked.offer.id, "redeemed_at": now})
    return Checked(done, checked.offer, checked.shop)
