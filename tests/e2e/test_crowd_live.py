"""Crowd levels in the shopper app: a sensor reading posted to /ingest/crowd moves an area's badge on the
open district screen without a reload (one graphql-transport-ws subscription per screen), each area has
an accessible popular-times chart with a truthful summary, and the socket lives only while the screen is open
and visible."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import expect

from server.api.ids import to_global
from server.domain.crowd import sensors
from server.settings import ROOT
from tests.conftest import RunningApp
from tests.e2e.conftest import artifacts_dir, ready, watch_csp
from tests.support import make_account

DISTRICT = "huaqiangbei"
HQB = to_global("District", DISTRICT)
SHENZHEN = ZoneInfo("Asia/Shanghai")
LIVE_AREA = "hqb-yannan-road"  # no other test posts readings for it
# Other areas of 华强北 get a level too, so the screenshots show the range: (share of capacity, minutes ago).
SCENE = {"hqb-seg-square": (0.55, 25), "hqb-zhonghang-road": (0.78, 2)}
# one of the shapes of crowd.wording, then the best hours, then the live value
SUMMARY = re.compile(r"^(\d\d:00 最(挤|空)（\d+%）|接下来会越来越空|接下来都很空|接下来人流平稳)(，比平时\S+(挤|空))?"
                     r"(; 最佳时段 \d\d:00–\d\d:00)?; 现在 \d+%$")


async def post_reading(app_server: RunningApp, key: str, area: str, count: int, minutes_ago: int = 0) -> None:
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).astimezone(SHENZHEN)
    async with httpx.AsyncClient(base_url=app_server.url) as http:
        response = await http.post("/ingest/crowd", headers={"authorization": f"Bearer {key}"},
                                   json={"readings": [{"areaId": area, "at": at.isoformat(), "count": count}]})
    assert response.status_code == 200, response.text


async def sensor_key(db: Any, area: str) -> str:
    admin = await make_account(db, "admin")
    _, key = await sensors.register(db, admin.actor(), area, "people_counter", "e2e")
    return key


def district_url(start: str) -> str:
    return (start if start.endswith("/") else start + "/").removesuffix("app/") + f"d/{HQB}"


async def area_screenshot(page: Any, name: str) -> None:
    """The top of the district screen down to the end of its areas list (the rest is the merchant list),
    in a viewport tall enough that the fixed tab bar stays below it."""
    size = page.viewport_size
    await page.evaluate("window.scrollTo(0, 0)")
    areas = await page.locator("main .areas").bounding_box()
    height = int(areas["y"] + areas["height"]) + 16
    await page.set_viewport_size({"width": size["width"], "height": height + 120})
    await page.screenshot(path=artifacts_dir() / name, clip={"x": 0, "y": 0, "width": size["width"], "height": height})
    await page.set_viewport_size(size)


def test_the_app_subscribes_with_the_checked_in_document() -> None:
    document = (ROOT / "graphql" / "operations" / "CrowdUpdates.graphql").read_text(encoding="utf-8")
    module = (ROOT / "pwa" / "crowd.js").read_text(encoding="utf-8")
    sent = re.search(r'const SUBSCRIPTION = "([^"]+)";', module)
    assert sent is not None
    assert " ".join(sent.group(1).split()) == " ".join(document.split())


async def test_a_reading_turns_the_area_packed_without_a_reload(
        context: Any, browser: Any, start: str, app_server: RunningApp, db_client: Any) -> None:
    db = db_client[app_server.db_name]
    area = await db.areas.find_one({"_id": LIVE_AREA})
    assert area is not None and area["district_id"] == DISTRICT
    key = await sensor_key(db, LIVE_AREA)
    scene_key = await sensor_key(db, "hqb-seg-square")
    other_key = await sensor_key(db, "hqb-zhonghang-road")
    for (slug, (share, ago)), k in zip(SCENE.items(), (scene_key, other_key), strict=True):
        found = await db.areas.find_one({"_id": slug})
        await post_reading(app_server, k, slug, round(found["capacity"] * share), ago)
    await post_reading(app_server, key, LIVE_AREA, round(area["capacity"] * 0.2))  # QUIET to begin with

    page = await context.new_page()
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    await page.goto(district_url(start))
    await ready(page)
    await expect(page.locator("main .areas .area")).to_have_count(5)
    area_id = to_global("Area", LIVE_AREA)
    badge = page.locator(f'main .area [data-crowd="{area_id}"]')
    await expect(badge.locator(".lvl-t")).to_have_text("人少")
    await expect(badge).to_have_attribute("data-level", "QUIET")
    row = page.locator(f"#a-{LIVE_AREA}")
    await row.scroll_into_view_if_needed()
    spark = page.locator(f'.fc[data-popular="{area_id}"] svg.pt[role="img"]')
    # today's popular times, with little history: the prior profile and the live level
    await expect(spark).to_have_attribute("aria-label", SUMMARY)
    handle = await row.element_handle()
    await page.evaluate("document.documentElement.dataset.e2eSameDocument = 'yes'")

    # a new level asks the server (not a cache) for that area's outlook again
    async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/graphql")
                                   and area_id in (r.post_data or "") and '"date"' in (r.post_data or "")):
        await post_reading(app_server, key, LIVE_AREA, int(area["capacity"]))  # 100 %: PACKED
        await expect(badge.locator(".lvl-t")).to_have_text("拥挤", timeout=10_000)
    await expect(badge).to_have_attribute("data-level", "PACKED")
    await expect(badge.locator(".pct")).to_have_text("100%")
    await expect(page.locator(f'[data-fresh="{area_id}"]')).to_have_text("刚刚更新")
    await expect(page.locator(f'main .phead [data-fresh="{HQB}"]')).to_have_text("刚刚更新")
    await expect(page.locator(f'main .phead [data-src="{HQB}"]')).to_contain_text("客流计数器")
    # in place: the same document and the same list item, updated through the one subscription
    assert await page.evaluate("document.documentElement.dataset.e2eSameDocument") == "yes"
    assert await handle.evaluate("(li) => li.isConnected")
    assert len([ws for ws in sockets if ws.url.endswith("/graphql")]) == 1
    await expect(spark).to_have_attribute("aria-label", SUMMARY)
    await expect(page.locator(".area .fc svg.pt")).to_have_count(5)
    await page.emulate_media(reduced_motion="reduce")  # no glow of the badge that just moved
    await expect(badge.locator(".lvl")).to_have_css("animation-name", "none")
    await area_screenshot(page, "crowd-district-390.png")

    # the same screen at 360 px in the dark theme, and the home page's district badges
    dark = await browser.new_context(viewport={"width": 360, "height": 780}, device_scale_factor=2, locale="zh-CN",
                                     timezone_id="Asia/Shanghai", color_scheme="dark", reduced_motion="reduce")
    errors: list[Any] = []
    violations = await watch_csp(dark)
    try:
        other = await dark.new_page()
        other.on("pageerror", lambda error: errors.append(error))
        await other.goto(district_url(start))
        await ready(other)
        for li in await other.locator("main .area").all():
            await li.scroll_into_view_if_needed()
        await expect(other.locator(".area .fc svg.pt")).to_have_count(5)
        await expect(other.locator(f'main .area [data-crowd="{area_id}"] .lvl-t')).to_have_text("拥挤")
        assert await other.evaluate("document.documentElement.scrollWidth") <= 360
        await area_screenshot(other, "crowd-district-360-dark.png")
        await other.goto(start)
        await ready(other)
        home_badge = other.locator(f'.dcard [data-crowd="{HQB}"] .lvl-t')
        await expect(home_badge).to_have_text(re.compile("^(人少|适中|较挤|拥挤)$"))
        await other.screenshot(path=artifacts_dir() / "crowd-home-360-dark.png")
    finally:
        await dark.close()
    assert not errors and not violations, (errors, violations)


async def test_the_socket_is_closed_when_hidden_or_left_and_opened_again_when_visible(
        context: Any, start: str) -> None:
    page = await context.new_page()
    async with page.expect_websocket(lambda ws: ws.url.endswith("/graphql")) as opened:
        await page.goto(district_url(start))
    first = await opened.value
    await ready(page)
    sent: list[str] = []
    first.on("framesent", lambda payload: sent.append(str(payload)))

    async with first.expect_event("close"):
        await page.evaluate("""() => {
            Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
    assert any('"complete"' in frame for frame in sent)  # the subscription was ended, not just dropped

    async with page.expect_websocket(lambda ws: ws.url.endswith("/graphql")) as reopened:
        await page.evaluate("""() => {
            Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
    second = await reopened.value
    await second.wait_for_event("framereceived", lambda payload: '"next"' in str(payload))

    async with second.expect_event("close"):  # leaving the screen ends it
        await page.get_by_role("navigation").get_by_role("link", name="首页").click()
        await ready(page)
