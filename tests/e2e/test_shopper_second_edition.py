"""The shopper app, second edition, in a phone-sized Chromium in zh-CN and en: popular times, calmer places
nearby, search that pages through everything, settings, a 404 inside the shell, the header that never
overlaps itself, the defects a new user met, and money in yuan in the back office."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import expect

from server.api.ids import to_global
from server.domain.crowd import sensors
from server.plumbing.persisted import digest
from server.settings import ROOT
from tests.conftest import RunningApp, gql
from tests.e2e.conftest import PHONE, artifacts_dir, ready
from tests.support import PASSWORD, make_account

SHENZHEN = ZoneInfo("Asia/Shanghai")
LOCALES = ["zh-CN", "en"]
WORDS = {
    "zh-CN": {"best": r"(最佳时段 \d\d:00–\d\d:00|今天的最佳时段已过)", "usual": r"^通常", "calmer": "附近更空的地方",
              "see_all": "查看全部", "more": "加载更多", "found": "{n} 家商户", "settings": "设置",
              "not_found": "找不到这个页面。",
              "home": "首页", "quiet": "免打扰：22:00–08:00 只发送紧急提醒。", "clear": "清除我的数据",
              "offers_all": r"^查看全部 \d+ 个优惠$", "followed_none": "还没有关注商圈", "popular": "热门时段",
              "shops_here": "本区商户", "walk": r"步行约 \d+ 分钟，现在人少（\d+%，这里 9\d%），也有"},
    "en": {"best": r"(Best time \d\d:00–\d\d:00|Today's best time has passed)", "usual": r"^Usually",
           "calmer": "Calmer places nearby", "see_all": "See all", "more": "Load more", "found": "{n} shops",
           "settings": "Settings", "not_found": "This page doesn't exist.", "home": "Home",
           "quiet": "Quiet hours: 22:00–08:00, only urgent alerts are sent.", "clear": "Clear my data",
           "offers_all": r"^Show all \d+ offers$", "followed_none": "No districts followed yet",
           "popular": "Popular times",
           "shops_here": "Shops here", "walk": r"\d+ min walk; quiet now \(\d+% vs 9\d% here\); also"},
}
# every shape crowd.wording can give, in both languages
SUMMARY = re.compile(r"^((\d\d:00 最(挤|空)（\d+%）|接下来会越来越空|接下来都很空|接下来人流平稳)(，比平时\S+(挤|空))?"
                     r"|(Busiest|Calmest) at \d\d:00 \(\d+%\)|Getting calmer from now on|Quiet for the next hours"
                     r"|About the same for the next hours)(; (busier|quieter) than a usual [\w ]+)?$")
DISTRICT_SCREEN = digest((ROOT / "graphql" / "operations" / "DistrictScreen.graphql").read_text(encoding="utf-8"))
HEADER = ["#back", ".brand img", ".brand-t", "#search-link", "#inbox-link", "#settings-link"]


def shop_url(start: str, path: str) -> str:
    return start.removesuffix("/").removesuffix("/app") + path


async def open_page(context: Any, start: str, path: str, locale: str) -> Any:
    if locale != "zh-CN":
        # once per tab: the language a shopper chose earlier (clearing the device's data may reset it)
        await context.add_init_script(
            f"try {{ if (!sessionStorage.getItem('sq.e2e')) {{ sessionStorage.setItem('sq.e2e', '1'); "
            f"localStorage.setItem('sq.locale', '{locale}'); }} }} catch {{}}")
    page = await context.new_page()
    await page.goto(shop_url(start, path))
    await ready(page)
    await expect(page.locator("html")).to_have_attribute("lang", locale)
    return page


async def post_shares(app_server: RunningApp, db: Any, shares: dict[str, float]) -> None:
    admin = await make_account(db, "admin")
    at = datetime.now(UTC).astimezone(SHENZHEN).isoformat()
    async with httpx.AsyncClient(base_url=app_server.url) as http:
        for area, share in shares.items():
            _, key = await sensors.register(db, admin.actor(), area, "people_counter", "second-edition")
            found = await db.areas.find_one({"_id": area})
            response = await http.post("/ingest/crowd", headers={"authorization": f"Bearer {key}"},
                                       json={"readings": [{"areaId": area, "at": at,
                                                           "count": round(found["capacity"] * share)}]})
            assert response.status_code == 200, response.text


async def header_does_not_overlap(page: Any, where: str) -> None:
    boxes = await page.evaluate("""(selectors) => selectors.map((s) => {
        const el = document.querySelector(s);
        if (!el || el.closest("[hidden]") || !el.getClientRects().length) return null;
        const r = el.getBoundingClientRect();
        return { s, l: r.left, r: r.right, t: r.top, b: r.bottom };
    }).filter(Boolean)""", HEADER)
    assert {b["s"] for b in boxes} >= {".brand-t", "#search-link", "#inbox-link", "#settings-link"}, where
    for a, b in itertools.combinations(boxes, 2):
        apart = a["r"] <= b["l"] + 0.5 or b["r"] <= a["l"] + 0.5 or a["b"] <= b["t"] + 0.5 or b["b"] <= a["t"] + 0.5
        assert apart, f"{where}: {a['s']} overlaps {b['s']}: {a} {b}"
    assert all(0 <= b["l"] and b["r"] <= PHONE["width"] for b in boxes), (where, boxes)


async def scroll_charts(page: Any) -> None:
    for el in await page.locator("[data-popular]").all():
        await el.scroll_into_view_if_needed()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('[data-popular]')].every((e) => !e.hasAttribute('aria-busy'))",
        timeout=30_000)  # a function: a bare expression is eval()ed, which the CSP blocks (see conftest.ready)


@pytest.mark.parametrize("locale", LOCALES)
async def test_popular_times_chart_with_live_value_best_hours_and_days(
        context: Any, start: str, app_server: RunningApp, db_client: Any, locale: str) -> None:
    words = WORDS[locale]
    await post_shares(app_server, db_client[app_server.db_name], {"futian-civic-center": 0.35})
    district = to_global("District", "futian-cbd")
    page = await open_page(context, start, f"/d/{district}", locale)
    panel = page.locator(".crowd-panel")
    await expect(panel.get_by_role("heading", name=words["popular"])).to_be_visible()
    await scroll_charts(page)
    chart = panel.locator("svg.pt[role=img]")
    await expect(chart.locator("rect.pt-b")).to_have_count(24)
    await expect(chart.locator("rect.pt-live")).to_have_count(1)  # today's live value over its hour
    assert SUMMARY.match(await panel.locator(".pt-sum").inner_text()), await panel.locator(".pt-sum").inner_text()
    await expect(panel.locator(".pt-best")).to_have_text(re.compile(words["best"]))
    area_charts = page.locator(".area .fc svg.pt[role=img]")
    await expect(area_charts).to_have_count(await page.locator(".area").count())
    for summary in await page.locator(".area .pt-sum").all_inner_texts():
        assert SUMMARY.match(summary), summary
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=artifacts_dir() / f"popular-times-{locale}.png")

    # a day later in the week: the usual day, no live value, its busiest hour
    days = panel.locator("[data-day]")
    await expect(days).to_have_count(7)
    await days.last.click()
    await expect(days.last).to_have_attribute("aria-pressed", "true")
    await expect(panel.locator(".pt-sum")).to_have_text(re.compile(words["usual"]))
    await expect(chart.locator("rect.pt-live")).to_have_count(0)
    await expect(panel.locator(".pt-best")).to_have_text(re.compile(words["best"]))
    await scroll_charts(page)
    for summary in await page.locator(".area .pt-sum").all_inner_texts():
        assert re.match(words["usual"], summary), summary
    await page.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_busy_area_offers_calmer_places_nearby(context: Any, start: str, app_server: RunningApp,
                                                       db_client: Any, http: httpx.AsyncClient, locale: str) -> None:
    words = WORDS[locale]
    db = db_client[app_server.db_name]
    await post_shares(app_server, db, {"pb-sea-world": 0.95, "pb-taizi-road": 0.2, "pb-cruise-terminal": 0.3,
                                       "pb-waterfront": 0.1})
    names = (await gql(http, '{ district(id: "%s") { areas { slug name } } }' % to_global("District", "prince-bay"),
                       headers={"accept-language": locale}))["data"]["district"]["areas"]
    name = {a["slug"]: a["name"] for a in names}
    page = await open_page(context, start, f"/d/{to_global('District', 'prince-bay')}", locale)
    card = page.locator("#a-pb-sea-world")
    calmer = card.locator(".alt")
    await expect(calmer.get_by_role("heading", name=words["calmer"])).to_be_visible()
    rows = calmer.locator(".alt-row")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text(name["pb-taizi-road"])
    await expect(rows.nth(1)).to_contain_text(name["pb-cruise-terminal"])
    await expect(rows.first.locator(".alt-why")).to_have_text(re.compile(words["walk"]))
    assert await rows.first.get_attribute("href") == (
        f"/d/{to_global('District', 'prince-bay')}?area={to_global('Area', 'pb-taizi-road')}")
    await expect(page.locator("#a-pb-taizi-road .alt")).to_be_hidden()  # a quiet area offers nothing
    await card.scroll_into_view_if_needed()
    await card.screenshot(path=artifacts_dir() / f"calmer-card-{locale}.png")

    # the merchant list of the busy area offers them too
    await page.emulate_media(reduced_motion="reduce")  # no smooth scroll to the list under the click
    await card.get_by_role("button", name=re.compile(words["shops_here"])).click()
    listed = page.locator(".mlist-alt")
    await expect(listed.locator(".alt-row")).to_have_count(2)
    await listed.locator(".alt-row").first.click()
    await ready(page)
    await expect(page.locator(f'[data-area="{to_global("Area", "pb-taizi-road")}"]')).to_have_attribute(
        "aria-pressed", "true")
    await page.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_search_pages_through_every_result_and_names_districts(
        context: Any, start: str, http: httpx.AsyncClient, locale: str) -> None:
    words = WORDS[locale]
    text = "罗湖" if locale == "zh-CN" else "luohu"
    total = (await gql(http, '{ merchants(filter: {query: "%s"}, first: 1) { totalCount } }' % text)
             )["data"]["merchants"]["totalCount"]
    assert total > 40
    page = await open_page(context, start, f"/search?q={text}", locale)
    group = page.locator("[aria-labelledby=r-m]")
    await expect(group.locator("li")).to_have_count(5)
    for row in await group.locator("li small").all_inner_texts():
        assert row.strip(), "every merchant result names its district"
    await page.screenshot(path=artifacts_dir() / f"search-{locale}.png")
    await group.get_by_role("link", name=words["see_all"]).click()
    await ready(page)
    await page.wait_for_url(re.compile(r"/search\?q=.+&all=merchants$"))
    cards = page.locator("#results .mcard")
    await expect(cards).to_have_count(20)
    await expect(page.locator("#results .count")).to_contain_text(words["found"].format(n=total))
    await page.get_by_role("button", name=words["more"]).click()
    await expect(cards).to_have_count(40)
    assert await page.locator("#results .mcard .mdistrict").count() == 40
    await page.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_settings_language_notifications_followed_and_clearing_the_device(
        context: Any, start: str, locale: str) -> None:
    words = WORDS[locale]
    page = await open_page(context, start, f"/d/{to_global('District', 'huaqiangbei')}", locale)
    await page.locator("main .phead .fav").click()  # follow the district
    await page.get_by_role("link", name=words["settings"]).click()
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(words["settings"])
    await expect(page.locator("#settings-link")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#quiet-note")).to_have_text(words["quiet"])
    followed = page.locator("[aria-labelledby=h-follow] .favs li")
    await expect(followed).to_have_count(1)
    boxes = page.locator("#prefs [name=district]")
    await boxes.first.uncheck()
    prefs = await page.evaluate("JSON.parse(localStorage.getItem('sq.inbox.prefs'))")
    assert len(prefs["districts"]) == await boxes.count() - 1
    topic = page.locator("#prefs [name=topic][value=OFFERS]")
    await topic.uncheck()
    assert "OFFERS" not in await page.evaluate("JSON.parse(localStorage.getItem('sq.inbox.prefs')).topics")
    await header_does_not_overlap(page, f"settings {locale}")
    await page.screenshot(path=artifacts_dir() / f"settings-{locale}.png", full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name=words["clear"]).click()
    await expect(page.locator("[aria-labelledby=h-follow]")).to_contain_text(WORDS["zh-CN"]["followed_none"])
    assert await page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('sq.'))") == []
    # the saved answers are gone (the settings screen, drawn again, may have saved its own since)
    cached = await page.evaluate("""async () => {
        const urls = [];
        for (const name of await caches.keys()) {
            if (name.includes("precache")) continue;
            for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
        }
        return urls;
    }""")
    assert not [u for u in cached if DISTRICT_SCREEN in u], cached
    await page.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_unknown_paths_get_a_translated_404_inside_the_shell(context: Any, start: str, locale: str) -> None:
    words = WORDS[locale]
    page = await open_page(context, start, "/", locale)
    response = await page.goto(shop_url(start, "/no/such/page"))
    assert response is not None and response.status == 404
    await ready(page)
    await expect(page.get_by_role("heading", level=1)).to_have_text(words["not_found"])
    await expect(page.get_by_role("navigation")).to_be_visible()  # inside the app: tab bar, header
    await header_does_not_overlap(page, f"404 {locale}")
    await page.screenshot(path=artifacts_dir() / f"not-found-{locale}.png")
    await page.locator("main").get_by_role("link", name=words["home"]).click()
    await ready(page)
    assert page.url.rstrip("/") == shop_url(start, "").rstrip("/")
    async with httpx.AsyncClient() as client:  # outside the app's pages: still a plain 404
        assert (await client.get(shop_url(start, "/admin/no-such"), headers={"accept": "text/html"})).status_code == 404
        plain = await client.get(shop_url(start, "/app/no-such.js"))
        assert plain.status_code == 404 and "manifest" not in plain.text
    await page.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_header_never_overlaps_itself(context: Any, start: str, http: httpx.AsyncClient,
                                                locale: str) -> None:
    merchant = to_global("Merchant", "hqb-gadget-gift-shop")
    page = await open_page(context, start, "/", locale)
    for path in ("/", f"/d/{to_global('District', 'futian-cbd')}", f"/m/{merchant}", "/search?q=hqb", "/gifts",
                 "/festivals", "/settings", "/favourites", "/inbox"):
        await page.goto(shop_url(start, path))
        await ready(page)
        await header_does_not_overlap(page, f"{path} {locale}")
        if path.startswith("/m/"):
            await expect(page.locator("#back")).to_be_visible()  # the screens with a back button are the tight ones
            await page.locator("header.top").screenshot(path=artifacts_dir() / f"header-back-{locale}.png")
    await page.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_defects_a_new_user_met_are_gone(context: Any, start: str, http: httpx.AsyncClient,
                                                   locale: str) -> None:
    words = WORDS[locale]
    page = await open_page(context, start, "/", locale)
    # home district cards say how fresh their crowd level is
    cards = page.locator(".districts .dcard")
    await expect(cards.locator(".fresh")).to_have_count(await cards.count())
    # horizontal offer rows start where the page's text starts, not at the screen edge
    first = await page.locator(".hscroll > li").first.bounding_box()
    heading = await page.locator("#h-ending").bounding_box()
    assert first is not None and heading is not None and abs(first["x"] - heading["x"]) <= 1, (first, heading)
    # and a card that scrolling snaps into place stops at the same margin
    await expect(page.locator(".hscroll").first).to_have_css("scroll-padding-left", "16px")

    # festival offers are rows with a badge, and the rest is "show all n offers", not "▶ +31"
    await page.goto(shop_url(start, "/festivals"))
    await ready(page)
    rows = page.locator(".fest .forow")
    await expect(rows.first.locator(".obadge")).to_be_visible()
    summary = page.locator(".fest details.fomore summary").first
    await expect(summary).to_have_text(re.compile(words["offers_all"]))
    await summary.click()
    await page.screenshot(path=artifacts_dir() / f"festival-offers-{locale}.png")

    # 深圳手信: grouped by category, a few each; "show all" opens one category
    await page.goto(shop_url(start, "/gifts"))
    await ready(page)
    groups = page.locator(".pgroup")
    count = await groups.count()
    assert count >= 4
    visible = await page.locator(".product:visible").count()
    assert visible <= 2 * count < await page.locator(".product").count()
    height = await page.evaluate("document.documentElement.scrollHeight")
    show = page.locator(".pgroup .showcat").first
    group = await show.evaluate("(b) => b.dataset.show")
    await show.click()
    await page.wait_for_url(f"**/gifts?cat={group}")
    await expect(page.locator(".pgroup:visible")).to_have_count(1)
    await page.screenshot(path=artifacts_dir() / f"gifts-{locale}.png")
    assert height < 12_000

    # merchant cards name their district everywhere
    await page.goto(shop_url(start, "/merchants"))
    await ready(page)
    await expect(page.locator(".mcard").first.locator(".mdistrict")).to_be_visible()
    assert await page.locator(".mcard").count() == await page.locator(".mcard .mdistrict").count()
    await page.close()


@pytest.fixture
async def no_js_phone(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN",
                                        timezone_id="Asia/Shanghai", java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    yield page
    await context.close()


async def test_merchants_type_and_read_money_in_yuan(app_server: RunningApp, db_client: Any, no_js_phone: Any,
                                                     context: Any, start: str) -> None:
    db = db_client[app_server.db_name]
    shop = "hqb-screen-doctor"
    account = await make_account(db, "merchant", merchant_ids=[shop])
    phone = no_js_phone
    await phone.goto(f"{app_server.url}/admin/login")
    await phone.get_by_label("电子邮箱").fill(account.email)
    await phone.get_by_label("密码").fill(PASSWORD)
    await phone.get_by_role("button", name="登录").click()
    await phone.wait_for_url(f"{app_server.url}/admin/")
    await phone.goto(f"{app_server.url}/admin/merchants/{shop}/products/new")
    await phone.locator("[name='name.zh-CN']").fill("屏幕医生清洁套装")
    await phone.locator("[name='story.zh-CN']").fill("擦屏布和清洁液，一套带走。")
    await phone.locator("[name='story.en']").fill("A cloth and a cleaner, to take home.")
    await phone.get_by_label("最低价（元）").fill("12.5")
    await phone.get_by_label("最高价（元）").fill("¥30")
    await phone.get_by_role("button", name="创建").click()
    await phone.wait_for_url(re.compile(r"/products\?ok=created$"))
    stored = await db.products.find_one({"owner_merchant_id": shop, "name.zh-CN": "屏幕医生清洁套装"})
    assert stored is not None and (stored["price_min_fen"], stored["price_max_fen"]) == (1250, 3000)
    await phone.goto(f"{app_server.url}/admin/products/{stored['_id']}")
    assert await phone.get_by_label("最低价（元）").input_value() == "12.50"
    assert await phone.get_by_label("最高价（元）").input_value() == "30"
    await phone.get_by_label("最低价（元）").fill("12.505")
    await phone.get_by_role("button", name="保存").click()
    await phone.wait_for_load_state()
    assert await phone.get_by_label("最低价（元）").input_value() == "12.505"  # kept as typed, and refused
    assert "最多两位小数" in await phone.locator("#f-price_min_yuan-err").inner_text()
    assert (await db.products.find_one({"_id": stored["_id"]}))["price_min_fen"] == 1250
    await phone.screenshot(path=str(artifacts_dir() / "backoffice-product-yuan-390.png"), full_page=True)

    # the shopper reads the same yuan
    page = await context.new_page()
    await page.goto(shop_url(start, f"/m/{to_global('Merchant', shop)}"))
    await ready(page)
    await expect(page.locator(".plist")).to_contain_text("¥12.50–30")
    await page.close()
    await db.products.delete_one({"_id": stored["_id"]})
