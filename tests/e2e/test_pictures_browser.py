"""Pictures end to end on a phone, in zh-CN and en: a merchant uploads a photo in the back office (no
JavaScript, like the cheapest phone browser), and the shopper app shows it with srcset, lazily, boxed by its
width and height; the home, district and 手信 screens show the content's drawn pictures the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import RunningApp
from tests.e2e.conftest import PHONE, artifacts_dir
from tests.e2e.test_shopper_second_edition import open_page
from tests.fixtures import pictures
from tests.support import PASSWORD, make_account

SHOPS = {"zh-CN": "rmn-wheatfield-bakery", "en": "cww-hongbao-pourover"}  # one per language, used by no other test
ALT = {"zh-CN": "店门口的招牌", "en": "The shop sign at the door"}
DONE = {"zh-CN": "上传图片", "en": "Upload picture"}
# what a loaded <img> from the server looks like, or why not
PICTURE = """(img) => img && {
    srcset: img.getAttribute("srcset"), sizes: img.getAttribute("sizes"), alt: img.alt,
    width: img.getAttribute("width"), height: img.getAttribute("height"), loading: img.getAttribute("loading"),
    decoding: img.getAttribute("decoding"), src: img.currentSrc, natural: img.naturalWidth,
    box: [img.getBoundingClientRect().width, img.getBoundingClientRect().height]}"""


@pytest.fixture
async def back_office(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    locale = request.node.callspec.params["locale"]
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1, locale=locale,
                                        timezone_id="Asia/Shanghai", java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    yield page
    await context.close()


async def _picture(page: Any, selector: str) -> dict[str, Any]:
    img = page.locator(selector).first
    await img.scroll_into_view_if_needed()
    await expect(img).to_have_js_property("complete", True, timeout=20_000)  # drawn on first request
    found: dict[str, Any] = await img.evaluate(PICTURE)
    assert found["natural"] > 0, (selector, found)
    assert found["srcset"].count("w, ") >= 1 and found["sizes"] and found["decoding"] == "async"
    assert int(found["width"]) > 0 and int(found["height"]) > 0, found
    assert "/img/" in found["src"] and found["src"].endswith(".webp")
    return found


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_an_upload_from_the_back_office_appears_in_the_app_with_srcset(
        app_server: RunningApp, db_client: Any, back_office: Any, context: Any, start: str, locale: str,
        tmp_path: Any) -> None:
    shop = SHOPS[locale]
    db = db_client[app_server.db_name]
    account = await make_account(db, "merchant", merchant_ids=[shop])
    photo = tmp_path / "IMG_1234.jpg"
    photo.write_bytes(pictures.with_gps())

    page = back_office
    await page.goto(f"{app_server.url}/admin/login")
    await page.locator('input[name="email"]').fill(account.email)
    await page.locator('input[name="password"]').fill(PASSWORD)
    await page.locator('button[type="submit"]').click()
    await page.wait_for_url(f"{app_server.url}/admin/")
    await page.goto(f"{app_server.url}/admin/merchants/{shop}")
    field = page.locator("#f-image")
    assert await field.get_attribute("accept") == "image/*"
    await field.set_input_files(str(photo))
    await page.locator(f"#f-alt-{locale}").fill(ALT[locale])
    await page.get_by_role("button", name=DONE[locale]).click()
    await page.wait_for_url(lambda url: "ok=saved" in url)
    await expect(page.locator(".thumbs img").first).to_have_attribute("alt", ALT[locale])
    await page.screenshot(path=str(artifacts_dir() / f"pictures-back-office-{locale}.png"), full_page=True)

    shopper = await open_page(context, start, f"/m/{shop}", locale)
    hero = await _picture(shopper, ".mpics img")
    assert hero["alt"] == ALT[locale] and (hero["width"], hero["height"]) == ("1200", "800")
    assert hero["srcset"].endswith("1024w, " + hero["srcset"].split(", ")[-1]) and "1200w" in hero["srcset"]
    # the box is the picture's own 16:10 frame from the first paint: no shift when the bytes arrive
    assert abs(hero["box"][0] / hero["box"][1] - 1.6) < 0.02
    await shopper.screenshot(path=str(artifacts_dir() / f"pictures-merchant-{locale}.png"))
    await shopper.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_home_district_and_gifts_show_the_contents_pictures(context: Any, start: str, locale: str) -> None:
    home = await open_page(context, start, "/", locale)
    banner = await _picture(home, ".banner .bpic")
    assert banner["loading"] == "lazy" and banner["box"] == [96, 60]
    await home.close()
    district = await open_page(context, start, "/d/huaqiangbei", locale)
    row = await _picture(district, ".mcard .thumb")
    assert row["loading"] == "lazy" and row["src"].endswith("/320.webp")  # 80 px on a 1x phone: the smallest
    await district.close()
    gifts = await open_page(context, start, "/gifts", locale)
    product = await _picture(gifts, ".product .ppic >> visible=true")
    assert product["loading"] == "lazy" and product["alt"]
    await gifts.screenshot(path=str(artifacts_dir() / f"pictures-gifts-{locale}.png"))
    await gifts.close()
