"""The back office in a real browser on a phone: a merchant signs in, creates an offer, publishes it, and a
shopper's GraphQL query returns it.  Playwright (async API) drives Debian's /usr/bin/chromium; without it the
test is skipped.  Screenshots are kept under var/artifacts/ (or $SHANGQUAN_ARTIFACTS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from server.api.ids import to_global
from tests.conftest import RunningApp, gql
from tests.e2e.conftest import PHONE, artifacts_dir
from tests.support import PASSWORD, make_account

SHOP = "hqb-gadget-gift-shop"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def phone(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN",
                                        timezone_id="Asia/Shanghai", java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    yield page
    await context.close()


async def test_a_merchant_publishes_an_offer_from_a_phone(app_server: RunningApp, db_client: Any, phone: Any,
                                                          http: httpx.AsyncClient) -> None:
    db = db_client[app_server.db_name]
    account = await make_account(db, "merchant", merchant_ids=[SHOP])
    problems: list[str] = []
    phone.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    title = "手机壳第二件半价"
    created_id = None
    try:
        await phone.goto(f"{app_server.url}/admin/login")
        await phone.get_by_label("电子邮箱").fill(account.email)
        await phone.get_by_label("密码").fill(PASSWORD)
        await phone.get_by_role("button", name="登录").click()
        await phone.wait_for_url(f"{app_server.url}/admin/")

        await phone.locator(f'a[href="/admin/merchants/{SHOP}/offers/new"]').click()
        await phone.wait_for_url(f"**/admin/merchants/{SHOP}/offers/new")
        await phone.get_by_label("简体中文").first.fill(title)
        await phone.get_by_label("英文").first.fill("Second phone case half price")
        await phone.get_by_label("类型").select_option("percent_off")
        await phone.get_by_label("折扣百分比").fill("50")
        await phone.get_by_label("优惠码").fill("CASE-50")
        start = datetime.now(UTC).astimezone(SHANGHAI) - timedelta(minutes=10)
        await phone.get_by_label("开始时间").fill(start.strftime("%Y-%m-%dT%H:%M"))
        await phone.get_by_label("结束时间").fill((start + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M"))
        await phone.get_by_label("数量上限").fill("200")
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the form scrolls sideways on a phone"

        await phone.get_by_role("button", name="保存为草稿").click()
        await phone.wait_for_url(lambda url: url.endswith(f"/admin/merchants/{SHOP}/offers?ok=created"))
        card = phone.locator("li.card", has_text=title)
        assert "草稿" in await card.inner_text()
        stored = await db.offers.find_one({"merchant_id": SHOP, "title.zh-CN": title})
        assert stored is not None and stored["status"] == "draft" and stored["percent_off"] == 50
        created_id = stored["_id"]

        await card.get_by_role("button", name="发布").click()
        await phone.wait_for_url(lambda url: url.endswith(f"/admin/merchants/{SHOP}/offers?ok=published"))
        assert "已发布，顾客现在可以看到。" in await phone.locator("p.notice").inner_text()

        # a shopper asks the public API
        data = (await gql(http, """{ offers(filter: {merchantId: "%s"}, first: 50) {
            edges { node { slug title couponCode percentOff } } } }""" % to_global("Merchant", SHOP),
            headers={"accept-language": "zh-CN"}))["data"]
        nodes = [e["node"] for e in data["offers"]["edges"]]
        assert {"slug": created_id, "title": title, "couponCode": "CASE-50", "percentOff": 50} in nodes
        assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems

        # the artifacts: a full-page screenshot resizes the viewport for a moment, so they come after the clicks
        await phone.screenshot(path=str(artifacts_dir() / "backoffice-offers-390.png"), full_page=True)
        await phone.goto(f"{app_server.url}/admin/offers/{created_id}")
        assert await phone.get_by_label("优惠码").input_value() == "CASE-50"
        await phone.screenshot(path=str(artifacts_dir() / "backoffice-offer-form-390.png"), full_page=True)
        await phone.goto(f"{app_server.url}/admin/merchants/{SHOP}/offers/new")
        await phone.get_by_label("简体中文").first.fill(title)
        await phone.get_by_label("优惠码").fill("no spaces!")
        await phone.get_by_role("button", name="保存为草稿").click()
        await phone.wait_for_load_state()
        assert "优惠码为 4–20 位大写字母" in await phone.locator("#f-coupon_code-err").inner_text()
        assert "此项必填。" in await phone.locator("#f-percent_off-err").inner_text()
        assert await phone.get_by_label("优惠码").input_value() == "no spaces!"
        await phone.screenshot(path=str(artifacts_dir() / "backoffice-offer-form-errors-390.png"), full_page=True)
    finally:
        if created_id:
            await db.offers.delete_one({"_id": created_id})
