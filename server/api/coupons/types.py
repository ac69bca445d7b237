"""A claimed coupon as GraphQL shows it, and the typed refusals of claiming and redeeming."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from functools import lru_cache

import segno
import strawberry

from server.api.common import AppInfo
from server.api.offers.types import OfferType
from server.domain.coupons.models import REDEEMED, Coupon, CouponError, display
from server.domain.errors import DomainError
from server.domain.offers.models import Offer


@strawberry.enum
class CouponState(Enum):
    CLAIMED = "claimed"
    REDEEMED = "redeemed"
    EXPIRED = "expired"


@lru_cache(maxsize=1024)
def qr_svg(code: str) -> str:
    """The code as a QR symbol (alphanumeric mode, medium error correction: a cracked screen still scans),
    an SVG of dark modules only, sized by the page."""
    return str(segno.make_qr(code, error="m").svg_inline(scale=4, border=2, omitsize=True))


@strawberry.type(name="Coupon", description="A one-time code claimed from an offer by a device.")
class CouponType:
    code: str = strawberry.field(description="The readable characters, in two groups of five (7KQ3M-XW2PD).")
    qr_svg: str = strawberry.field(description="The code as a QR code, an inline SVG drawn by the server.")
    state: CouponState
    claimed_at: datetime
    expires_at: datetime = strawberry.field(description="The end of its offer: a claimed code expires with it.")
    redeemed_at: datetime | None
    model: strawberry.Private[Coupon]
    offer_model: strawberry.Private[Offer | None]

    @staticmethod
    def of(coupon: Coupon, now: datetime, offer: Offer | None = None) -> CouponType:
        state = (CouponState.REDEEMED if coupon.state == REDEEMED
                 else CouponState.EXPIRED if coupon.expired_at(now) else CouponState.CLAIMED)
        return CouponType(code=display(coupon.code), qr_svg=qr_svg(coupon.code), state=state,
                          claimed_at=coupon.claimed_at, expires_at=coupon.expires_at,
                          redeemed_at=coupon.redeemed_at, model=coupon, offer_model=offer)

    @strawberry.field(description="Its offer; null once the merchant has withdrawn it.")
    async def offer(self, info: AppInfo) -> OfferType | None:
        offer = self.offer_model or await info.context.loaders.offer.load(self.model.offer_id)
        return None if offer is None else OfferType.of(offer, info.context.locale)


@strawberry.type(description="Why a coupon could not be claimed or redeemed.")
class CouponProblem:
    field: str = strawberry.field(description="The input at fault (code, deviceKey, id), or empty.")
    code: str = strawberry.field(description="INVALID_CODE, NOT_YOUR_OFFER, ALREADY_REDEEMED, COUPON_EXPIRED, "
                                             "OUT_OF_STOCK, LIMIT_REACHED, NOT_CLAIMABLE, INVALID_DEVICE, "
                                             "RATE_LIMITED, UNAUTHENTICATED or FORBIDDEN.")
    message: str = strawberry.field(description="In the request's locale, with when and where if it applies.")
    reason: str | None = strawberry.field(default=None, description="For INVALID_CODE: MALFORMED, CHECK_DIGIT "
                                                                    "(a typo) or UNKNOWN (no such code).")
    redeemed_at: datetime | None = strawberry.field(default=None, description="For ALREADY_REDEEMED: when.")
    redeemed_where: str | None = strawberry.field(default=None, description="For ALREADY_REDEEMED: the shop.")
    retry_after: int | None = strawberry.field(default=None, description="For RATE_LIMITED: seconds.")


REASONS = {"coupon_malformed": "MALFORMED", "coupon_check": "CHECK_DIGIT", "coupon_unknown": "UNKNOWN"}
FIELDS = {"INVALID_CODE": "code", "NOT_YOUR_OFFER": "code", "ALREADY_REDEEMED": "code", "COUPON_EXPIRED": "code",
          "INVALID_DEVICE": "deviceKey", "OUT_OF_STOCK": "id", "LIMIT_REACHED": "id", "NOT_CLAIMABLE": "id"}


def problem_of(exc: DomainError, locale: str) -> CouponProblem:
    if not isinstance(exc, CouponError):
        return CouponProblem(field="", code=exc.code, message=str(exc))
    when = exc.values.get("when")
    shop = exc.values.get("shop")
    return CouponProblem(
        field=FIELDS.get(exc.code, ""), code=exc.code, message=exc.describe(locale), reason=REASONS.get(exc.key),
        redeemed_at=when if exc.code == "ALREADY_REDEEMED" and isinstance(when, datetime) else None,
        redeemed_where=str(exc.describe_value("shop", locale)) if isinstance(shop, dict) else None)
