"""`images` on Merchant, Product and Festival, and /img/<key>/<width>.webp, over HTTP against the real app."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image
from pymongo import AsyncMongoClient

from server.api.ids import to_global
from tests.conftest import RunningApp, gql

IMAGES = "images { url srcset width height alt }"
MERCHANT = "hqb-huaqiang-digital-phone-mall"


async def _images(http: httpx.AsyncClient, field: str, type_name: str, key: str, locale: str) -> list[dict[str, Any]]:
    body = await gql(http, '{ %s(id: "%s", locale: "%s") { name %s } }'
                     % (field, to_global(type_name, key), locale, IMAGES))
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"][field]["images"]
    return found


async def test_content_gives_every_kind_a_picture_with_srcset_and_alt_in_the_locale(http: httpx.AsyncClient) -> None:
    zh = await _images(http, "merchant", "Merchant", MERCHANT, "zh-CN")
    en = await _images(http, "merchant", "Merchant", MERCHANT, "en")
    assert len(zh) == 1
    picture = zh[0]
    assert picture["alt"] == "华强数码手机城" and en[0]["alt"] == "Huaqiang Digital Phone Mall"
    assert (picture["width"], picture["height"]) == (1024, 640)
    key = picture["url"].split("/")[2]
    assert picture["url"] == f"/img/{key}/640.webp"
    assert picture["srcset"] == f"/img/{key}/320.webp 320w, /img/{key}/640.webp 640w, /img/{key}/1024.webp 1024w"
    assert await _images(http, "product", "Product", "shajing-oyster", "en")
    assert await _images(http, "festival", "Festival", "winter-shopping-season-2026", "zh-HK")


async def test_a_picture_is_served_as_webp_cached_for_a_year(http: httpx.AsyncClient, app_server: RunningApp,
                                                             db_client: AsyncMongoClient[Any]) -> None:
    picture = (await _images(http, "festival", "Festival", "national-day-golden-week-2026", "en"))[0]
    for url, width in [(picture["url"], 640), (picture["url"].replace("640", "320"), 320)]:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert Image.open(io.BytesIO(response.content)).size == (width, width * 640 // 1024)
        again = await http.get(url, headers={"if-none-match": response.headers["etag"]})
        assert again.status_code == 304 and not again.content
    # drawn on the first request for each width, then kept in GridFS; widths nobody asked for are not drawn
    key = picture["url"].split("/")[2]
    files = db_client[app_server.db_name]["image_files.files"]
    assert sorted([f["_id"] async for f in files.find({"metadata.key": key})]) == [f"{key}-320", f"{key}-640"]


async def test_unknown_pictures_are_plain_404s_never_the_app_shell(http: httpx.AsyncClient) -> None:
    picture = (await _images(http, "merchant", "Merchant", MERCHANT, "en"))[0]
    key = picture["url"].split("/")[2]
    for url in (f"/img/{key}/1600.webp", f"/img/{'0' * 24}/640.webp", "/img/not-a-key/640.webp", "/img/x"):
        response = await http.get(url, headers={"accept": "text/html"})
        assert response.status_code == 404, url
        assert "<html" not in response.text.lower()
