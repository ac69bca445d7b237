"""Claiming a coupon (a shopper's device) and redeeming one (the merchant's counter or POS, signed in)."""

from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.coupons.types import CouponProblem, CouponType, problem_of
from server.api.ids import key_of
from server.api.payloads import actor, attempt
from server.domain.coupons import service
from server.domain.coupons.service import GUESSES
from server.domain.errors import Unauthenticated
from server.domain.messages import translate
from server.plumbing import guessing


@strawberry.type
class CouponPayload:
    coupon: CouponType | None = strawberry.field(description="The claimed or redeemed coupon; null on errors.")
    errors: list[CouponProblem]


@strawberry.type
class CouponMutations:
    @strawberry.mutation(description="A device claims one coupon of an offer (per-device limit and stock apply). "
                                     "deviceKey is the random id the app keeps on the device.")
    async def claim_offer(self, info: AppInfo, id: strawberry.ID, device_key: str,
                          locale: LocaleArg = None) -> CouponPayload:
        ctx = info.context
        ctx.use_locale(locale)
        checked, _, exc = await attempt(info, service.claim(ctx.db, device_key, key_of(id, "Offer"), ctx.now))
        if exc is not None or checked is None:
            return CouponPayload(coupon=None, errors=[problem_of(exc, ctx.locale)] if exc else [])
        return CouponPayload(coupon=CouponType.of(checked.coupon, ctx.now, checked.offer), errors=[])

    @strawberry.mutation(description="The merchant redeems a coupon of one of its offers at the counter "
                                     "(a session or an API token with the offers scope). Exactly once.")
    async def redeem_coupon(self, info: AppInfo, code: str, locale: LocaleArg = None) -> CouponPayload:
        ctx = info.context
        ctx.use_locale(locale)
        who = await actor(info)
        if not who.signed_in:
            return CouponPayload(coupon=None, errors=[problem_of(Unauthenticated(), ctx.locale)])
        keys = guessing.clients(ctx.request, who)
        limit = ctx.settings.rate_limit_coupon_misses
        wait = await guessing.wait_before_trying(ctx.limiter, keys, limit)
        if wait:
            return CouponPayload(coupon=None, errors=[CouponProblem(
                field="code", code="RATE_LIMITED", retry_after=wait,
                message=translate("coupon_rate_limited", ctx.locale, seconds=wait))])
        checked, _, exc = await attempt(info, service.redeem(ctx.db, who, code[:64], ctx.now))
        if exc is not None or checked is None:
            if exc is not None and exc.code in GUESSES:
                await guessing.count_miss(ctx.limiter, keys, limit)
            return CouponPayload(coupon=None, errors=[problem_of(exc, ctx.locale)] if exc else [])
        return CouponPayload(coupon=CouponType.of(checked.coupon, ctx.now, checked.offer), errors=[])
