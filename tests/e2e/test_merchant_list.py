"""The merchant list: infinite scroll over the connection, category filter, and "near me" that asks for
the location only when tapped and then shows distances."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import expect

from tests.conftest import gql
from tests.e2e.conftest import ready, watch_csp

# Huaqiangbei, SEG Plaza (WGS-84)
HERE = {"latitude": 22.5405, "longitude": 114.0855}
COUNT_GEOLOCATION_CALLS = """
    window.__geolocationCalls = 0;
    const original = navigator.geolocation.getCurrentPosition.bind(navigator.geolocation);
    navigator.geolocation.getCurrentPosition = (...args) => {
        window.__geolocationCalls += 1;
        return original(...args);
    };
"""


async def test_infinite_scroll_and_category_filter(context: Any, start: str, http: httpx.AsyncClient) -> None:
    total = (await gql(http, "{ merchants { totalCount } }"))["data"]["merchants"]["totalCount"]
    assert total > 40
    page = await context.new_page()
    await page.goto(start.removesuffix("app/") + "merchants")
    await ready(page)
    cards = page.locator(".mlist > li")
    await expect(page.locator(".count")).to_have_text(f"{total} 家商户")
    await expect(cards).to_have_count(20)
    await page.locator(".more").scroll_into_view_if_needed()
    await expect(cards).to_have_count(40)  # the next page, fetched with the `after` cursor

    category = page.get_by_label("分类")
    await expect(category.locator("option[value=repair]")).to_have_count(1)
    label = (await category.locator("option[value=repair]").inner_text()).split(" (")[0]
    await category.select_option("repair")
    await page.wait_for_url("**/merchants?cat=repair")
    await expect(page.locator(".count")).not_to_have_text(f"{total} 家商户")
    count = await cards.count()
    assert 0 < count < 20
    for meta in await cards.locator(".mmeta").all_inner_texts():
        assert label in meta


async def test_near_me_asks_for_the_location_only_when_tapped(browser: Any, start: str) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                        geolocation=HERE, permissions=["geolocation"])
    violations = await watch_csp(context)
    try:
        await context.add_init_script(COUNT_GEOLOCATION_CALLS)
        page = await context.new_page()
        await page.goto(start.removesuffix("app/") + "merchants")
        await ready(page)
        await expect(page.locator(".mlist > li")).to_have_count(20)
        assert await page.evaluate("window.__geolocationCalls") == 0

        near = page.get_by_role("button", name="附近")
        await near.click()
        await expect(near).to_have_attribute("aria-pressed", "true")
        assert await page.evaluate("window.__geolocationCalls") == 1
        distances = page.locator(".mlist .mdist")
        await expect(distances.first).to_be_visible()
        meters = []
        for text in await distances.all_text_contents():  # cards off screen are not laid out (content-visibility)
            value = float(text.replace("公里", "").replace("米", "").replace(",", "").strip())
            meters.append(value * 1000 if "公里" in text else value)
        assert meters == sorted(meters) and meters[0] < 1000  # nearest first, and we are in Huaqiangbei
        await expect(page.locator(".mlist")).to_contain_text("华强")
    finally:
        await context.close()
    assert not violations, violations
