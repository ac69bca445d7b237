"""深圳手信 by category with stories and where to buy; the festivals calendar, current and upcoming."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import expect

from tests.conftest import gql
from tests.e2e.conftest import ready

ZH = {"accept-language": "zh-CN"}


async def test_gifts_by_category_with_story_and_where_to_buy(context: Any, start: str,
                                                             http: httpx.AsyncClient) -> None:
    products = (await gql(http, "{ products(first: 50) { edges { node { category } } } }", headers=ZH))["data"]
    tea = sum(e["node"]["category"] == "tea" for e in products["products"]["edges"])
    page = await context.new_page()
    await page.goto(start)
    await ready(page)
    await page.get_by_role("navigation").get_by_role("link", name="手信").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("深圳手信")
    cards = page.locator(".product")
    await expect(cards).to_have_count(len(products["products"]["edges"]))

    await page.get_by_role("button", name="茶", exact=True).click()
    await page.wait_for_url("**/gifts?cat=tea")
    await expect(page.locator(".product:visible")).to_have_count(tea)
    first = page.locator(".product:visible").first
    await expect(first.locator(".pill")).to_have_text("茶")
    more = first.get_by_role("button", name="展开故事")
    await more.click()
    await expect(first.get_by_role("button", name="收起")).to_have_attribute("aria-expanded", "true")
    await expect(first.locator(".sold a").first).to_have_attribute("href", re.compile(r"^/m/[\w-]+$"))


async def test_festivals_calendar_lists_current_and_upcoming(context: Any, start: str, http: httpx.AsyncClient) -> None:
    body = await gql(http, "{ now: festivals(when: CURRENT) { name } next: festivals(when: UPCOMING) { name } }",
                     headers=ZH)
    page = await context.new_page()
    await page.goto(start.removesuffix("app/") + "festivals")
    await ready(page)
    for heading, key in (("正在进行", "now"), ("即将开始", "next")):
        section = page.get_by_role("region", name=heading)
        await expect(section.locator(".fest")).to_have_count(len(body["data"][key]))
        for festival in body["data"][key][:3]:
            await expect(section).to_contain_text(festival["name"])
