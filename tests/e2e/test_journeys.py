"""The main shopper journeys on a phone: district → open-now filter → merchant → offer; search; language."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from playwright.async_api import expect

from server.api.ids import to_global
from server.domain.geo import Point, gcj02
from tests.conftest import gql
from tests.e2e.conftest import ready

HQB = to_global("District", "huaqiangbei")
ZH = {"accept-language": "zh-CN"}


async def hqb_merchants(http: httpx.AsyncClient, **flags: bool) -> list[dict[str, Any]]:
    extra = "".join(f", {k}: {str(v).lower()}" for k, v in flags.items())
    body = await gql(http, '{ merchants(filter: {districtId: "%s"%s}, first: 50) { edges { node { id name '
                     'location { lat lng } closesAt offers { title } } } } }' % (HQB, extra), headers=ZH)
    return [e["node"] for e in body["data"]["merchants"]["edges"]]


async def test_pick_huaqiangbei_filter_open_now_open_a_merchant_and_see_its_offer(
        context: Any, start: str, http: httpx.AsyncClient) -> None:
    open_now = await hqb_merchants(http, openNow=True)
    open_with_offer = await hqb_merchants(http, openNow=True, hasActiveOffer=True)
    with_offer = await hqb_merchants(http, hasActiveOffer=True)
    assert with_offer, "the content has offers in 华强北"
    target = (open_with_offer or with_offer)[0]

    page = await context.new_page()
    await page.goto(start)
    await ready(page)
    await page.locator(".districts").get_by_role("link", name=re.compile("华强北")).click()
    await page.wait_for_url(f"**/d/{HQB}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("华强北")
    await ready(page)

    open_chip = page.get_by_role("button", name="营业中")
    await open_chip.click()
    await expect(open_chip).to_have_attribute("aria-pressed", "true")
    await page.wait_for_url(re.compile(r"[?&]open=1"))
    merchants = page.locator(".mlist")
    if open_now:
        await expect(page.locator(".count")).to_have_text(f"{len(open_now)} 家商户")
        await expect(merchants.locator(".status.closed")).to_have_count(0)
        first_status = merchants.locator(".status.open").first
        if open_now[0]["closesAt"]:  # "open now · closes 22:00"
            await expect(first_status).to_contain_text(f"{open_now[0]['closesAt']} 打烊")
        else:  # open round the clock (in the small hours only such shops are open): no closing time to show
            await expect(first_status).to_have_text(re.compile(r"^\s*营业中\s*$"))
    else:
        await expect(page.locator(".count")).to_have_text("没有符合条件的商户。")
    if not open_with_offer:  # nothing open right now has an offer: drop the open-now filter
        await open_chip.click()
        await expect(open_chip).to_have_attribute("aria-pressed", "false")
    offer_chip = page.get_by_role("button", name="有优惠")
    await offer_chip.click()
    await expect(offer_chip).to_have_attribute("aria-pressed", "true")
    await expect(merchants.locator("li")).to_have_count(len(open_with_offer or with_offer))

    await merchants.get_by_role("link", name=re.compile(re.escape(target["name"]))).click()
    await page.wait_for_url(f"**/m/{target['id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(target["name"])
    offers = page.locator(".offers")
    await expect(offers).to_contain_text(target["offers"][0]["title"])
    await expect(offers).to_contain_text("有效期至")

    # call and directions: AMap and Apple Maps get GCJ-02, as server/domain/geo.py computes it
    await expect(page.locator("a[href^='tel:']").first).to_be_visible()
    shifted = gcj02(Point(target["location"]["lat"], target["location"]["lng"]))
    amap = urlparse(await page.locator("a[data-map=amap]").get_attribute("href") or "")
    assert amap.netloc == "uri.amap.com" and amap.path == "/marker"
    lng, lat = map(float, parse_qs(amap.query)["position"][0].split(","))
    assert abs(lng - shifted.lng) < 1e-6 and abs(lat - shifted.lat) < 1e-6
    assert parse_qs(amap.query)["name"] == [target["name"]]
    apple = urlparse(await page.locator("a[data-map=apple]").get_attribute("href") or "")
    lat, lng = map(float, parse_qs(apple.query)["ll"][0].split(","))
    assert apple.netloc == "maps.apple.com" and abs(lat - shifted.lat) < 1e-6 and abs(lng - shifted.lng) < 1e-6

    # back goes to the district with its filters still in the URL
    await page.get_by_role("link", name="返回").click()
    await page.wait_for_url(re.compile(r"/d/.*offer=1"))
    await expect(page.get_by_role("button", name="有优惠")).to_have_attribute("aria-pressed", "true")


async def test_search_hqb_finds_huaqiangbei(context: Any, start: str) -> None:
    page = await context.new_page()
    await page.goto(start)
    await ready(page)
    await page.locator("main .searchbox").click()
    await page.wait_for_url("**/search")
    box = page.get_by_role("searchbox")
    await expect(box).to_be_focused()
    await box.fill("hqb")
    results = page.locator("#results")
    await expect(results.get_by_role("heading", name=re.compile("^商圈"))).to_be_visible()
    await expect(results.locator("[aria-labelledby=r-d]").get_by_role("link", name="华强北")).to_be_visible()
    merchants = results.locator("[aria-labelledby=r-m] li")
    await expect(merchants.first).to_contain_text("华强北")
    await page.wait_for_url("**/search?q=hqb")
    await results.locator("[aria-labelledby=r-d]").get_by_role("link", name="华强北").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("华强北")


async def test_language_switch_to_english_and_back_is_remembered(context: Any, start: str) -> None:
    page = await context.new_page()
    await page.goto(start)
    await ready(page)
    html = page.locator("html")
    await expect(html).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("heading", level=1)).to_have_text("逛深圳，从商圈开始")

    # the language is chosen in the settings (the header's gear)
    await page.get_by_role("link", name="设置").click()
    await ready(page)
    await page.get_by_role("button", name="English").click()
    await expect(html).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
    await expect(page.get_by_role("navigation")).to_contain_text("Home")
    assert await page.get_attribute("#manifest", "href") == "/app/manifest.en.webmanifest"
    await page.get_by_role("navigation").get_by_role("link", name="Home").click()
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Explore Shenzhen, district by district")
    await expect(page.locator(".districts")).to_contain_text("Huaqiangbei")  # content, not just UI strings

    await page.reload()
    await ready(page)
    await expect(html).to_have_attribute("lang", "en")
    await expect(page.locator(".districts")).to_contain_text("Huaqiangbei")
    await page.get_by_role("link", name="Settings").click()
    await ready(page)
    await expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")

    await page.get_by_role("button", name="繁體中文").click()
    await expect(html).to_have_attribute("lang", "zh-HK")
    await expect(page.get_by_role("heading", level=1)).to_have_text("設定")
    await page.get_by_role("button", name="简体中文").click()
    await expect(html).to_have_attribute("lang", "zh-CN")
    await page.get_by_role("navigation").get_by_role("link", name="首页").click()
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("逛深圳，从商圈开始")
    await page.reload()
    await ready(page)
    await expect(page.locator(".districts")).to_contain_text("华强北")
    assert await page.evaluate("localStorage.getItem('sq.locale')") == "zh-CN"


async def test_favourites_are_kept_on_the_device(context: Any, start: str) -> None:
    page = await context.new_page()
    await page.goto(start)
    await ready(page)
    await page.locator(".districts").get_by_role("link", name=re.compile("华强北")).click()
    await ready(page)
    save = page.locator("main .phead").get_by_role("button", name="收藏")
    await save.click()
    await expect(save).to_have_attribute("aria-pressed", "true")
    await page.get_by_role("navigation").get_by_role("link", name="收藏").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("我的收藏")
    await expect(page.locator("main .favs")).to_contain_text("华强北")
    await page.reload()
    await ready(page)
    await expect(page.locator("main .favs")).to_contain_text("华强北")


async def test_readable_links_from_notifications_open_the_same_pages(context: Any, start: str) -> None:
    """Operators write /d/huaqiangbei in a campaign; the app's own links carry global IDs."""
    page = await context.new_page()
    await page.goto(start.rstrip("/") + "/d/huaqiangbei")
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("华强北")
    await page.goto(start.rstrip("/") + f"/d/{HQB}")
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text("华强北")
    await page.close()
