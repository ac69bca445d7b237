"""The festival dashboard and the invite form in a real browser: a card takes in a new alert without a reload,
the charts draw under the back office's CSP, the invite form follows the chosen role, the link copies with one
click, and the server's messages stand next to the fields. The `context` fixture fails a test on any CSP
violation or uncaught script error."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from server.domain.crowd import alerts, sensors
from tests.conftest import RunningApp
from tests.e2e.conftest import artifacts_dir
from tests.support import PASSWORD, make_account

DISTRICT = "huaqiangbei"
AREA = "hqb-zhenxing-road"  # no other test posts readings for it


async def sign_in(page: Any, app: RunningApp, email: str) -> None:
    await page.goto(f"{app.url}/admin/login")
    await page.get_by_label("电子邮箱").fill(email)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(f"{app.url}/admin/")


async def test_a_district_card_takes_in_a_new_alert_without_a_reload(
        app_server: RunningApp, db_client: Any, context: Any, http: httpx.AsyncClient) -> None:
    db = db_client[app_server.db_name]
    operator = await make_account(db, "operator", district_ids=[DISTRICT])
    await alerts.set_rule(db, operator.actor(), AREA, "BUSY", "MODERATE", 5)
    await db.crowd_state.delete_one({"_id": AREA})
    page = await context.new_page()
    await sign_in(page, app_server, operator.email)

    card = page.locator(f"#district-{DISTRICT}")
    chart = card.locator(f'figure[data-area="{AREA}"] svg.chart-crowd-day')
    box = await chart.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 80, "the crowd chart is not drawn"
    # pygal's CSS came from /admin/static/charts.css: the plot is white, not the default black fill
    fill = await chart.locator(".plot > .background").evaluate("(el) => getComputedStyle(el).fill")
    assert fill in ("rgb(255, 255, 255)", "#ffffff"), fill
    assert "人流" in await card.locator(".alerts-today").inner_text()
    await page.evaluate("() => { window.__sameDocument = true; }")

    _, key = await sensors.register(db, operator.actor(), AREA, "camera", "Zhenxing roof")
    capacity = (await db.areas.find_one({"_id": AREA}))["capacity"]
    reading = {"readings": [{"areaId": AREA, "at": datetime.now(UTC).isoformat(), "count": round(capacity * 0.85)}]}
    posted = await http.post("/ingest/crowd", json=reading, headers={"authorization": f"Bearer {key}"})
    assert posted.status_code == 200, posted.text

    area_now = card.locator(f'li[data-area="{AREA}"]')
    await area_now.locator("strong.percent", has_text="85.0%").wait_for(timeout=45_000)
    assert "BUSY（85%）" in await card.locator(".alerts-today").inner_text()
    assert await page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    assert int(await card.get_attribute("data-refreshed") or "0") >= 1
    await page.screenshot(path=str(artifacts_dir() / "festival-dashboard.png"), full_page=True)


async def test_the_invite_form_follows_the_role_and_the_link_copies(
        app_server: RunningApp, db_client: Any, context: Any) -> None:
    db = db_client[app_server.db_name]
    admin = await make_account(db, "admin")
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server.url)
    page = await context.new_page()
    await sign_in(page, app_server, admin.email)
    await page.goto(f"{app_server.url}/admin/invite")
    shops, districts = page.locator('[data-for-role="merchant"]'), page.locator('[data-for-role="operator"]')
    assert await shops.is_visible() and not await districts.is_visible()
    role = page.get_by_label("角色")
    await role.select_option("operator")
    assert not await shops.is_visible() and await districts.is_visible()
    await role.select_option("admin")
    assert not await shops.is_visible() and not await districts.is_visible()

    # the browser lets the form through (novalidate): the server's messages stand next to the fields
    await role.select_option("operator")
    await page.get_by_label("电子邮箱").fill("not-an-email")
    await page.get_by_role("button", name="创建邀请链接").click()
    await page.wait_for_load_state()
    email_error = page.locator("#f-email-err")
    assert await email_error.is_visible() and await email_error.inner_text()
    assert await page.locator("#f-district_ids-err").inner_text() == "此项必填。"
    assert await districts.is_visible() and not await shops.is_visible()
    assert await page.get_by_label("电子邮箱").input_value() == "not-an-email"

    email = f"op-{uuid.uuid4().hex[:6]}@example.com"
    await page.get_by_label("电子邮箱").fill(email)
    await districts.get_by_label("华强北").check()
    await page.get_by_role("button", name="创建邀请链接").click()
    await page.get_by_role("heading", name="邀请已创建").wait_for()
    link = await page.get_by_label("邀请链接").input_value()
    assert "/admin/invite/" in link
    await page.get_by_role("button", name="复制链接").click()
    await page.locator("#copy-status", has_text="已复制。").wait_for()
    assert await page.evaluate("() => navigator.clipboard.readText()") == link

    await page.goto(link)
    assert f"你正在以 {email} 的身份接受邀请，角色：商圈运营。" in await page.locator("#accepting").inner_text()
