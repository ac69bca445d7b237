"""The inbox: a campaign sent to 华强北 shows at /inbox with an unread badge on the bell; reading it lowers
the count; following another district hides it. The notification button is there but never tapped
(headless Chromium's pushManager.subscribe never settles), and nothing asks for permission on load."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from playwright.async_api import expect

from server.api.ids import to_global
from server.domain.push import campaign_service
from server.domain.push.campaign import CampaignInput
from tests.conftest import RunningApp
from tests.e2e.conftest import artifacts_dir, controlled, ready
from tests.support import make_account, told_public_cache

HQB = to_global("District", "huaqiangbei")
COUNT_PROMPTS = """
window.__prompts = 0;
if (window.Notification) {
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...a) => { window.__prompts += 1; return ask(...a); };
}
"""


async def badge_count(page: Any) -> int:
    badge = page.locator("#inbox-badge")
    return int(await badge.text_content() or 0) if await badge.is_visible() else 0


async def test_inbox_shows_a_campaign_counts_unread_and_follows_the_chosen_districts(
        context: Any, start: str, app_server: RunningApp, db_client: Any) -> None:
    db = db_client[app_server.db_name]
    admin = await make_account(db, "admin")
    tag = uuid.uuid4().hex[:6]
    title = f"华强北今晚特惠 {tag}"
    async with told_public_cache(app_server.settings):
        await campaign_service.create(db, admin.actor(), CampaignInput(
            title={"zh-CN": title, "zh-HK": f"華強北今晚特惠 {tag}", "en": f"Huaqiangbei tonight {tag}"},
            body={"zh-CN": "数码配件满 200 减 30，今晚 22:00 截止", "zh-HK": "數碼配件滿 200 減 30",
                  "en": "¥30 off ¥200"},
            url={"zh-CN": "/festivals"}, district_ids=["huaqiangbei"], topics=["offers"]), now=datetime.now(UTC))

    await context.add_init_script(COUNT_PROMPTS)
    page = await context.new_page()
    await page.goto(start)
    await ready(page)
    await expect(page.locator("#inbox-badge")).to_be_visible()
    before = await badge_count(page)
    assert before >= 1

    await page.locator("#inbox-link").click()
    await page.wait_for_url("**/inbox")
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("消息中心")
    message = page.locator(".msgs li", has_text=title)
    await expect(message).to_be_visible()
    await expect(message.locator("time")).to_have_text(re.compile("刚刚|分钟前"))
    await expect(page.get_by_role("button", name="开启通知")).to_be_visible()
    assert await page.evaluate("Notification.permission") == "default"
    await page.screenshot(path=str(artifacts_dir() / "inbox-390.png"), full_page=True)

    await message.get_by_role("button", name="标为已读").click()
    await expect(message.get_by_role("button", name="标为已读")).to_have_count(0)
    assert await badge_count(page) == before - 1

    hqb = page.locator(f"input[name=district][value='{HQB}']")
    await expect(hqb).to_be_checked()
    await hqb.uncheck()
    await expect(page.locator(".msgs li", has_text=title)).to_have_count(0)
    await controlled(page)  # /inbox is a client-side route: the service worker serves the shell for it
    await page.reload()
    await ready(page)
    await expect(page.locator(f"input[name=district][value='{HQB}']")).not_to_be_checked()
    await expect(page.locator(".msgs li", has_text=title)).to_have_count(0)
    assert await page.evaluate("window.__prompts") == 0, "nothing may ask for notification permission by itself"
