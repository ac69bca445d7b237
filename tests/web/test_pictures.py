"""Uploading pictures in the back office: who may, what is refused (and then nothing is stored), what shows."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import httpx
import pytest
from PIL import Image

from server.api.ids import to_global
from tests.conftest import RunningApp, gql
from tests.fixtures import pictures
from tests.web.conftest import SHOP_X, SHOP_Y, Browser, People, signed_in

FESTIVAL = "winter-shopping-season-2026"  # runs in huaqiangbei, among others
SHARED_PRODUCT = "shajing-oyster"  # a city specialty: admins only
IMAGES = "images { url srcset width height alt }"


async def _browser(app: RunningApp, account: Any, page: str) -> Browser:
    browser = await signed_in(app, account)
    await browser.form_page(page)  # keeps the page's CSRF token
    return browser


async def _upload(browser: Browser, kind: str, owner: str, data: bytes, name: str = "photo.jpg",
                  **alt: str) -> httpx.Response:
    fields = {"csrf": browser.csrf, **{f"alt.{k.replace('_', '-')}": v for k, v in alt.items()}}
    return await browser.client.post(f"/admin/images/{kind}/{owner}", data=fields,
                                     files={"image": (name, data, "application/octet-stream")})


async def _stored(db: Any) -> tuple[int, int]:
    files = [f async for f in db["image_files.files"].find({})]
    return await db.images.count_documents({}), len(files)


async def _merchant_images(http: httpx.AsyncClient, locale: str) -> list[dict[str, Any]]:
    body = await gql(http, '{ merchant(id: "%s", locale: "%s") { %s } }' % (to_global("Merchant", SHOP_X), locale,
                                                                           IMAGES))
    found: list[dict[str, Any]] = body["data"]["merchant"]["images"]
    return found


async def test_a_merchant_uploads_a_phone_photo_and_shoppers_see_it_stripped(
        app_server: RunningApp, people: People, db: Any, http: httpx.AsyncClient) -> None:
    before = await _merchant_images(http, "en")  # cached now: the upload must bump the merchant's tags
    merchant = await _browser(app_server, people.merchant_a, f"/admin/merchants/{SHOP_X}")
    # a picture of its own: one with the same pixels elsewhere would rightly keep its bytes after the delete
    response = await _upload(merchant, "merchant", SHOP_X, pictures.with_gps(band=7), zh_CN="店门口",
                             en="The shop front")
    assert response.status_code == 303 and response.headers["location"].endswith("#pictures")
    after = await _merchant_images(http, "en")
    # the new one, wherever other tests' uploads (kept in upload order) put it; content's drawn picture stays last
    [new] = [i for i in after if i not in before]
    assert [i for i in after if i is not new] == before and after[-1] == before[-1]
    assert new["alt"] == "The shop front"
    assert (await _merchant_images(http, "zh-CN"))[after.index(new)]["alt"] == "店门口"
    assert (new["width"], new["height"]) == (1200, 800) and "1024w" in new["srcset"]
    served = await http.get(new["url"])
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert not Image.open(io.BytesIO(served.content)).getexif() and b"PhoneMaker" not in served.content
    # the edit page shows it, and the audit log has it
    page = await merchant.get(f"/admin/merchants/{SHOP_X}")
    assert new["url"] in page.text
    entry = await db.audit.find_one({"action": "image.upload", "target_id": SHOP_X})
    assert entry is not None and entry["district_ids"] == ["huaqiangbei"]
    # and a delete takes it away again, bytes included
    stored = await db.images.find_one({"owner": f"merchant:{SHOP_X}", "alt.en": "The shop front"})
    image_id = str(stored["_id"])
    assert f'action="/admin/images/{image_id}/delete"' in page.text
    key = new["url"].split("/")[2]
    assert (await merchant.post(f"/admin/images/{image_id}/delete")).status_code == 303
    assert len(await _merchant_images(http, "en")) == len(before)
    assert (await http.get(new["url"])).status_code == 404
    assert await db["image_files.files"].find_one({"metadata.key": key}) is None
    await merchant.aclose()


async def test_two_uploads_at_once_both_show_and_a_delete_takes_only_its_own(
        app_server: RunningApp, people: People, db: Any, http: httpx.AsyncClient) -> None:
    """Each upload adds its own id to the shop's list of pictures (shopper pages read them by _id), so two
    at the same moment both stay listed."""
    before = await _merchant_images(http, "en")
    merchant = await _browser(app_server, people.merchant_a, f"/admin/merchants/{SHOP_X}")
    sent = await asyncio.gather(*(_upload(merchant, "merchant", SHOP_X, pictures.with_gps(band=b), en=f"At once {b}")
                                  for b in (11, 12)))
    assert [r.status_code for r in sent] == [303, 303]
    after = await _merchant_images(http, "en")
    assert sorted(i["alt"] for i in after if i not in before) == ["At once 11", "At once 12"]
    assert after[-1] == before[-1]  # content's drawn picture stays last
    first = await db.images.find_one({"owner": f"merchant:{SHOP_X}", "alt.en": "At once 11"})
    assert (await merchant.post(f"/admin/images/{first['_id']}/delete")).status_code == 303
    left = await _merchant_images(http, "en")
    assert [i["alt"] for i in left if i not in before] == ["At once 12"]
    listed = await db.images_by_owner.find_one({"_id": f"merchant:{SHOP_X}"})
    stored = [d["_id"] async for d in db.images.find({"owner": f"merchant:{SHOP_X}", "origin": "backoffice"})]
    assert sorted(listed["ids"]) == sorted(stored)
    await merchant.aclose()


@pytest.mark.parametrize(("make", "key", "text"), [
    (lambda: b"%PDF-1.4 not a picture", "image_not_an_image", "这个文件不是图片。"),
    (pictures.bomb, "image_bomb", "解压炸弹"),
    (pictures.over_40mp, "image_too_many_pixels", "4000 万像素"),
    (pictures.truncated_jpeg, "image_truncated", "图片文件不完整"),
    (lambda: b"\xff\xd8" + b"\0" * (10 * 1024 * 1024), "image_too_large", "超过 10 MB"),
])
async def test_bad_files_are_refused_next_to_the_field_and_nothing_is_stored(
        app_server: RunningApp, people: People, db: Any, make: Any, key: str, text: str) -> None:
    merchant = await _browser(app_server, people.merchant_a, f"/admin/merchants/{SHOP_X}")
    before = await _stored(db)
    response = await _upload(merchant, "merchant", SHOP_X, make(), zh_CN="我的说明")
    assert response.status_code == 422
    error = re.search(r'<p class="error" id="f-image-err">([^<]*)</p>', response.text)
    assert error and text in error.group(1)
    assert 'aria-invalid="true"' in response.text and 'value="我的说明"' in response.text  # what was typed stays
    assert await _stored(db) == before
    await merchant.aclose()


async def test_heic_from_an_iphone_is_accepted(app_server: RunningApp, people: People, db: Any) -> None:
    # the district's operator, for one of its merchants
    operator = await _browser(app_server, people.operator, f"/admin/merchants/{SHOP_X}")
    response = await _upload(operator, "merchant", SHOP_X, pictures.heic(), "IMG_0001.HEIC", en="Lanterns")
    assert response.status_code == 303
    doc = await db.images.find_one({"owner": f"merchant:{SHOP_X}", "alt.en": "Lanterns"})
    assert doc is not None and doc["widths"] == [320, 640, 800]
    await operator.aclose()


async def test_only_those_who_may_edit_a_thing_add_its_pictures(app_server: RunningApp, people: People,
                                                                 db: Any) -> None:
    before = await _stored(db)
    other = await _browser(app_server, people.merchant_b, "/admin/")
    assert (await _upload(other, "merchant", SHOP_X, pictures.photo())).status_code == 403
    assert (await _upload(other, "product", SHARED_PRODUCT, pictures.photo())).status_code == 403
    assert (await _upload(other, "festival", FESTIVAL, pictures.photo())).status_code == 403
    far = await _browser(app_server, people.other_operator, "/admin/")
    assert (await _upload(far, "merchant", SHOP_X, pictures.photo())).status_code == 403
    near = await _browser(app_server, people.operator, "/admin/")  # not of every district the festival runs in
    assert (await _upload(near, "festival", FESTIVAL, pictures.photo())).status_code == 403
    assert (await _upload(far, "nonsense", SHOP_X, pictures.photo())).status_code == 404
    no_token = await other.client.post(f"/admin/images/merchant/{SHOP_Y}", data={},
                                       files={"image": ("a.jpg", pictures.photo(), "image/jpeg")})
    assert no_token.status_code == 403
    assert await _stored(db) == before
    # far over 10 MB: refused by the route's body limit before it is read
    huge = await _upload(other, "merchant", SHOP_Y, b"\xff\xd8" + b"\0" * (21 * 1024 * 1024))
    assert huge.status_code == 413
    assert await _stored(db) == before
    # admins add to shared specialties and festivals; what shoppers read (cached) changes at once
    async with httpx.AsyncClient(base_url=app_server.url) as http:
        query = '{ product(id: "%s") { %s } festival(id: "%s") { %s } }' % (
            to_global("Product", SHARED_PRODUCT), IMAGES, to_global("Festival", FESTIVAL), IMAGES)
        cached = (await gql(http, query))["data"]
        admin = await _browser(app_server, people.admin, f"/admin/products/{SHARED_PRODUCT}")
        assert (await _upload(admin, "product", SHARED_PRODUCT, pictures.photo((900, 900), "PNG"))).status_code == 303
        assert (await _upload(admin, "festival", FESTIVAL, pictures.photo((900, 600), "WEBP"))).status_code == 303
        fresh = (await gql(http, query))["data"]
    for kind in ("product", "festival"):
        assert len(fresh[kind]["images"]) == len(cached[kind]["images"]) + 1, kind
    assert fresh["festival"]["images"][0]["srcset"].endswith("900w")
    for browser in (other, far, near, admin):
        await browser.aclose()
