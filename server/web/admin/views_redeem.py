"""核销: the counter checks a shopper's coupon (scanned or typed), sees what it is for, and confirms.

Made for a phone: one field, the camera behind a button where the browser can read QR codes
(static/redeem.js), and every refusal written next to the field by the server. Confirming posts a form
token drawn when the preview was shown, so a double tap (two POSTs of one form) redeems once and both
taps get the success page.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain.coupons import service as coupons
from server.domain.coupons.models import CouponError, display, normalise
from server.domain.coupons.service import GUESSES, Checked
from server.domain.messages import translate
from server.plumbing import guessing
from server.web.admin.common import Values, db_of, form_str, locale_of, page, posted, render, signed_in
from server.web.admin.money import to_yuan


def value_of(checked: Checked, locale: str) -> str:
    offer = checked.offer
    if offer.kind == "percent_off" and offer.percent_off:
        text = translate("value_percent_off", locale, n=offer.percent_off)
    elif offer.kind == "amount_off" and offer.amount_off_fen:
        text = translate("value_amount_off", locale, yuan=to_yuan(offer.amount_off_fen))
    else:
        text = translate(f"kind_{offer.kind}", locale)
    if offer.min_spend_fen:
        text += translate("value_min_spend", locale, yuan=to_yuan(offer.min_spend_fen))
    return text


def _form(request: Request, code: str, problem: str = "", status: int = 200, **more: Any) -> Response:
    context = {"values": Values({"code": code}), "problem": problem, "done": None, "checked": None, **more}
    return render(request, "redeem.html", context, status)


@page
async def redeem_form(request: Request) -> Response:
    await signed_in(request)
    return _form(request, "")


@page
async def redeem(request: Request) -> Response:
    actor, form = await posted(request)
    typed = form_str(form, "code", 64)
    locale = locale_of(request)
    limiter = request.app.state.limiter
    keys = guessing.clients(request, actor)
    limit = request.app.state.settings.rate_limit_coupon_misses
    wait = await guessing.wait_before_trying(limiter, keys, limit)
    if wait:
        return _form(request, typed, translate("coupon_rate_limited", locale, seconds=wait), 429)
    confirming = form_str(form, "step", 10) == "confirm"
    now = datetime.now(UTC)
    db = db_of(request)
    try:
        if confirming:
            done = await coupons.redeem(db, actor, typed, now, form_str(form, "form_token", 64) or None)
            return _form(request, "", done=done, value=value_of(done, locale), shown=display(done.coupon.code))
        checked = await coupons.inspect(db, actor, typed, now)
    except CouponError as exc:
        if exc.code in GUESSES:
            await guessing.count_miss(limiter, keys, limit)
        return _form(request, typed, exc.describe(locale), 422)
    return _form(request, display(normalise(typed)), checked=checked, value=value_of(checked, locale),
                 form_token=secrets.token_urlsafe(16))
