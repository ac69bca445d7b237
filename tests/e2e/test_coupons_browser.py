"""A shopper claims a coupon on a phone, keeps it in 我的券 (offline too), and the shop redeems it at the
counter by typing its code into the 核销 screen: in Chinese and in English."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import segno
from playwright.async_api import expect

from server.api.ids import to_global
from server.domain.coupons import service as coupons
from tests.conftest import RunningApp
from tests.e2e.conftest import PHONE, controlled, ready, watch_csp
from tests.support import PASSWORD, make_account, published_offer

SHOP = "hqb-huaqiang-digital-phone-mall"
WORDS = {
    "zh-CN": {"claim": "领取", "claimed": "已领取", "mine": "我的券", "offline": "离线中", "redeemed": "已核销",
              "email": "电子邮箱", "password": "密码", "sign_in": "登录", "code": "券码", "check": "查看",
              "confirm": "确认核销", "done": "已核销：", "title": "满100减20", "value": "立减 ¥20"},
    "en": {"claim": "Claim", "claimed": "Claimed", "mine": "My coupons", "offline": "Offline", "redeemed": "Redeemed",
           "email": "Email", "password": "Password", "sign_in": "Sign in", "code": "Coupon code", "check": "Check",
           "confirm": "Confirm redemption", "done": "Redeemed: ", "title": "20 off 100", "value": "¥20 off"},
}


@pytest.fixture
async def phone_in(browser: Any) -> AsyncIterator[Any]:
    """Phone contexts in a given language, each checked for page errors and CSP violations."""
    opened: list[tuple[Any, list[Any], list[str]]] = []

    async def open_in(locale: str) -> Any:
        ctx = await browser.new_context(viewport=PHONE, locale=locale, timezone_id="Asia/Shanghai",
                                        service_workers="allow")
        ctx.set_default_timeout(10_000)
        errors: list[Any] = []
        ctx.on("page", lambda page: page.on("pageerror", lambda error: errors.append(error)))
        opened.append((ctx, errors, await watch_csp(ctx)))
        return ctx

    yield open_in
    for ctx, errors, violations in opened:
        await ctx.close()
        assert not errors, errors
        assert not violations, violations


async def at_the_counter(ctx: Any, url: str, email: str, locale: str) -> Any:
    """A shop assistant's phone signed in to the back office, on the 核销 screen."""
    w = WORDS[locale]
    page = await ctx.new_page()
    await page.goto(f"{url}/admin/login?lang={locale}")
    await page.get_by_label(w["email"]).fill(email)
    await page.get_by_label(w["password"]).fill(PASSWORD)
    await page.get_by_role("button", name=w["sign_in"]).click()
    await page.wait_for_url(f"{url}/admin/")
    await page.goto(f"{url}/admin/redeem")
    return page


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_claim_keep_offline_and_redeem_at_the_counter(locale: str, phone_in: Any, app_server: RunningApp,
                                                           db_client: Any) -> None:
    w = WORDS[locale]
    db = db_client[app_server.db_name]
    admin = await make_account(db, "admin")
    offer = await published_offer(db, admin, SHOP, stock=5)
    merchant = await make_account(db, "merchant", merchant_ids=[SHOP])

    shopper = await (await phone_in(locale)).new_page()
    await shopper.goto(f"{app_server.url}/m/{SHOP}")
    await ready(shopper)
    claim = shopper.locator(f'button[data-claim="{to_global("Offer", offer.id)}"]')
    await expect(claim).to_have_text(w["claim"])
    await claim.click()
    await expect(shopper.locator("#toast")).to_contain_text(w["claimed"])
    stored = await db.coupons.find_one({"offer_id": offer.id})
    assert stored is not None
    code = f"{stored['_id'][:5]}-{stored['_id'][5:]}"

    await shopper.locator("#coupons-link").click()
    await ready(shopper)
    coupon = shopper.locator(".coupon-card", has_text=code)
    await expect(coupon.locator(".qr svg")).to_be_visible()
    await expect(coupon).to_contain_text(w["title"])
    width = await shopper.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "我的券 scrolls sideways on a phone"

    # Offline, from the device alone: the shell from the precache, the coupon from the device's storage.
    await controlled(shopper)
    await shopper.context.set_offline(True)
    try:
        await shopper.reload()
        await ready(shopper)
        await expect(shopper.locator("#netbar")).to_contain_text(w["offline"])
        await expect(shopper.locator(".coupon-card", has_text=code).locator(".qr svg")).to_be_visible()
    finally:
        await shopper.context.set_offline(False)

    counter = await at_the_counter(await phone_in(locale), app_server.url, merchant.email, locale)
    assert await counter.evaluate("() => 'BarcodeDetector' in window") is False  # typing works without it
    await counter.get_by_label(w["code"]).fill(code.lower().replace("-", " "))
    await counter.get_by_role("button", name=w["check"]).click()
    await expect(counter.locator(".coupon-preview")).to_contain_text(w["title"])
    await expect(counter.locator(".coupon-preview")).to_contain_text(w["value"])
    await counter.get_by_role("button", name=w["confirm"]).dblclick()
    await expect(counter.get_by_role("status").filter(has_text=w["done"])).to_contain_text(code)
    assert await db.audit.count_documents({"action": "coupon.redeem", "target_id": stored["_id"]}) == 1

    await counter.goto(f"{app_server.url}/admin/redeem")
    await counter.get_by_label(w["code"]).fill(code)
    await counter.get_by_role("button", name=w["check"]).click()
    await expect(counter.locator("#f-code-err")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d"))

    await shopper.reload()
    await ready(shopper)
    await expect(shopper.locator(".coupon-card", has_text=code)).to_contain_text(w["redeemed"])


# A phone camera pointed at the shopper's screen: a canvas showing the QR code (segno's PNG of it), as a stream.
CAMERA_ON_QR = """
if (navigator.mediaDevices) {  // (absent from the blank page a new tab starts with)
  navigator.mediaDevices.getUserMedia = async () => {
    const image = new Image();
    image.src = window.sqQrPng;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 320;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, 320, 320);
    ctx.drawImage(image, 40, 40, 240, 240);
    const stream = canvas.captureStream(5);
    setInterval(() => ctx.drawImage(image, 40, 40, 240, 240), 100);  // keep frames coming
    return stream;
  };
}
"""


async def test_without_barcode_detector_the_vendored_reader_scans_the_qr_code(
        phone_in: Any, app_server: RunningApp, db_client: Any) -> None:
    db = db_client[app_server.db_name]
    admin = await make_account(db, "admin")
    offer = await published_offer(db, admin, SHOP)
    merchant = await make_account(db, "merchant", merchant_ids=[SHOP])
    claimed = await coupons.claim(db, "scanner-test-device-0002", offer.id, datetime.now(UTC))
    png = segno.make_qr(claimed.coupon.code, error="m").png_data_uri(scale=8, border=4)
    ctx = await phone_in("en")
    await ctx.add_init_script(f"window.sqQrPng = {json.dumps(png)};" + CAMERA_ON_QR)
    counter = await at_the_counter(ctx, app_server.url, merchant.email, "en")
    assert await counter.evaluate("() => 'BarcodeDetector' in window") is False
    scripts: list[str] = []
    counter.on("request", lambda request: scripts.append(request.url) if request.url.endswith(".js") else None)
    await counter.get_by_role("button", name="Scan").click()
    await expect(counter.locator(".coupon-preview .code")).to_have_text(
        f"{claimed.coupon.code[:5]}-{claimed.coupon.code[5:]}", timeout=20_000)
    assert f"{app_server.url}/admin/static/vendor/jsQR.js" in scripts, "read by the vendored jsQR"


# What a phone with a camera and BarcodeDetector gives the page: the camera as a stream (a painted canvas here)
# and a detector that reads the shopper's QR code (its payload is the code without the hyphen).
CAMERA_AND_DETECTOR = """
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["qr_code"]; }
  async detect() { return window.sqShownCode ? [{ format: "qr_code", rawValue: window.sqShownCode }] : []; }
};
if (navigator.mediaDevices) {  // (absent from the blank page a new tab starts with)
  navigator.mediaDevices.getUserMedia = async () => {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 64;
    canvas.getContext("2d").fillRect(0, 0, 64, 64);
    return canvas.captureStream();
  };
}
"""


async def test_the_counter_scans_the_qr_code_where_the_browser_can(phone_in: Any, app_server: RunningApp,
                                                                   db_client: Any) -> None:
    db = db_client[app_server.db_name]
    admin = await make_account(db, "admin")
    offer = await published_offer(db, admin, SHOP)
    merchant = await make_account(db, "merchant", merchant_ids=[SHOP])
    claimed = await coupons.claim(db, "scanner-test-device-0001", offer.id, datetime.now(UTC))
    ctx = await phone_in("zh-CN")
    await ctx.add_init_script(CAMERA_AND_DETECTOR)
    counter = await at_the_counter(ctx, app_server.url, merchant.email, "zh-CN")
    await counter.get_by_role("button", name="扫码").click()
    await expect(counter.locator("#camera")).to_be_visible()
    await counter.evaluate("(code) => { window.sqShownCode = code; }", claimed.coupon.code)
    await expect(counter.locator(".coupon-preview")).to_contain_text("满100减20")
    await expect(counter.locator(".coupon-preview .code")).to_have_text(
        f"{claimed.coupon.code[:5]}-{claimed.coupon.code[5:]}")
