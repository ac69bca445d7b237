"""The campaign console on a phone: an operator composes, previews the three languages, sends, and watches the
counters move without reloading while the "worker" (this test, writing the campaign's stats in MongoDB) reports
outcomes.  Playwright (async API) drives Debian's /usr/bin/chromium; without it the test is skipped."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import expect

from server.domain.push.models import PushSubscription
from server.push.expand import enqueue
from server.services.redis import connect as connect_redis
from tests.conftest import RunningApp
from tests.e2e.conftest import PHONE, artifacts_dir
from tests.support import PASSWORD, make_account

DISTRICT = "huaqiangbei"
PHONES = ("zh-CN", "zh-HK", "en")


@pytest.fixture
async def phones(app_server: RunningApp, db_client: Any) -> AsyncIterator[int]:
    """Subscribed phones in huaqiangbei, one per language; they and the campaigns sent here are removed after."""
    db = db_client[app_server.db_name]
    now = datetime.now(UTC)
    before = {d["_id"] async for d in db.push_campaigns.find({}, {"_id": 1})}
    docs = [PushSubscription(uuid.uuid4().hex, f"https://push.example.com/console/{uuid.uuid4().hex}", "p256dh",
                             "auth", "https://push.example.com", (DISTRICT,), ("offers",), loc, now, now).to_doc()
            for loc in PHONES]
    await db.push_subscriptions.insert_many(docs)
    yield len(docs)
    await db.push_subscriptions.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
    await db.push_campaigns.delete_many({"_id": {"$nin": sorted(before)}})


async def test_compose_preview_send_and_watch_the_counters_live(context: Any, app_server: RunningApp,
                                                                db_client: Any, phones: int, redis_url: str) -> None:
    db = db_client[app_server.db_name]
    account = await make_account(db, "operator", district_ids=[DISTRICT])
    rows = await (await db.push_subscriptions.aggregate([
        {"$match": {"districts": {"$in": [DISTRICT]}, "topics": {"$in": ["offers"]},
                    "locale": {"$in": list(PHONES)}}}, {"$count": "n"}])).to_list()
    audience = int(rows[0]["n"])
    assert audience >= phones
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    await page.goto(f"{app_server.url}/admin/login")
    await page.get_by_label("电子邮箱").fill(account.email)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(f"{app_server.url}/admin/")

    await page.get_by_role("navigation", name="主菜单").get_by_role("link", name="推送消息").click()
    await page.wait_for_url("**/admin/campaigns")
    await page.get_by_role("link", name="新建推送").click()
    await page.wait_for_url("**/admin/campaigns/new")
    await page.locator("#f-title-zh-CN").fill("华强北今晚手机配件特卖")
    await page.locator("#f-body-zh-CN").fill("19:00–22:00 全场配件满 200 减 30。")
    await page.locator("#f-title-en").fill("Phone accessories sale tonight")
    await page.locator("#f-body-en").fill("¥30 off ¥200 on accessories, 19:00–22:00.")
    await page.locator("#f-url-zh-CN").fill("/d/huaqiangbei")
    await expect(page.locator(f"input[name=district_ids][value={DISTRICT}]")).to_be_checked()
    await page.get_by_role("checkbox", name="优惠").check()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the compose form scrolls sideways on a phone"
    await page.screenshot(path=str(artifacts_dir() / "admin-campaign-compose-390.png"), full_page=True)

    await page.get_by_role("button", name="预览").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("预览推送")
    await expect(page.locator("#audience")).to_contain_text(f"目前约有 {audience} 个订阅会收到")
    await expect(page.locator("#preview-zh-CN .n-title")).to_have_text("华强北今晚手机配件特卖")
    await expect(page.locator("#preview-zh-HK .n-title")).to_have_text("华强北今晚手机配件特卖")  # falls back
    await expect(page.locator("#preview-zh-HK")).to_contain_text("没有这种语言的内容，显示简体中文。")
    await expect(page.locator("#preview-en .n-title")).to_have_text("Phone accessories sale tonight")
    assert await db.push_campaigns.find_one({"title.zh-CN": "华强北今晚手机配件特卖"}) is None
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.screenshot(path=str(artifacts_dir() / "admin-campaign-preview-390.png"), full_page=True)

    await page.get_by_role("button", name="立即发送").click()
    await page.wait_for_url(re.compile(r".*/admin/campaigns/[0-9a-f]{32}\?ok=campaign_sent$"))
    campaign_id = page.url.rsplit("/", 1)[1].split("?", 1)[0]
    await expect(page.locator("p.notice")).to_have_text("已开始发送。")
    await expect(page.locator("[data-state]")).to_have_text("发送中")
    await expect(page.locator("[data-live-note]")).to_be_visible()  # the script runs (the CSP allows it)
    redis = connect_redis(redis_url)  # the request stored the campaign; a worker expands it, the page follows
    try:
        await enqueue(db, redis, campaign_id)
    finally:
        await redis.aclose()
    await expect(page.locator('[data-stat="targeted"]').first).to_have_text(str(audience))
    await expect(page.locator('[data-stat="delivered"]')).to_have_text("0")

    # the worker reports: part delivered, then the rest, and a tap; the page follows without a reload
    marker = await page.evaluate("window.__sameDocument = true")
    assert marker is True
    await db.push_campaigns.update_one({"_id": campaign_id}, {"$inc": {"stats.sent": audience,
                                                                       "stats.delivered": 1}})
    await expect(page.locator('[data-stat="delivered"]')).to_have_text("1")
    await expect(page.locator('[data-stat="sent"]')).to_have_text(str(audience))
    await expect(page.locator("[data-done]")).to_have_text("1")
    await db.push_campaigns.update_one({"_id": campaign_id}, {"$inc": {"stats.delivered": audience - 1,
                                                                       "stats.clicked": 1}})
    await expect(page.locator('[data-stat="clicked"]')).to_have_text("1")
    await expect(page.locator("[data-percent]")).to_have_text("100")
    await expect(page.locator("[data-state]")).to_have_text("已发送")
    assert await page.evaluate("document.querySelector('[data-progress]').value") == audience
    await expect(page.locator("details.confirm")).to_be_hidden()  # nothing left to cancel
    await expect(page.locator("[data-refresh]")).to_be_hidden()
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.screenshot(path=str(artifacts_dir() / "admin-campaign-detail-390.png"), full_page=True)

    await page.get_by_role("link", name="推送消息").first.click()
    card = page.locator(f"#campaign-{campaign_id}")
    await expect(card).to_contain_text("已发送")
    await expect(card).to_contain_text("华强北今晚手机配件特卖")
    await page.screenshot(path=str(artifacts_dir() / "admin-campaigns-390.png"), full_page=True)
    assert not problems, problems
