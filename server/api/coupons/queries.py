"""A device's coupons: what "我的券" shows (the PWA also keeps them on the device, for offline)."""

from __future__ import annotations

import strawberry

from server.api.common import AppInfo, LocaleArg
from server.api.coupons.types import CouponType
from server.api.errors import BAD_USER_INPUT, ApiError
from server.domain.coupons import service
from server.domain.coupons.models import device_hash


@strawberry.type
class CouponQueries:
    @strawberry.field(description="The coupons this device claimed, newest first (redeemed and expired too).")
    async def my_coupons(self, info: AppInfo, device_key: str, locale: LocaleArg = None) -> list[CouponType]:
        ctx = info.context
        ctx.use_locale(locale)
        if device_hash(device_key) is None:
            raise ApiError(BAD_USER_INPUT, "deviceKey must be 16–100 letters, digits, - or _", field="deviceKey")
        return [CouponType.of(c, ctx.now) for c in await service.of_device(ctx.db, device_key)]
