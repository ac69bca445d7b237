"""Installable in Chromium: no installability errors; the manifest has what an install needs."""

from __future__ import annotations

import json
import struct
from typing import Any

import httpx
import pytest

from tests.conftest import RunningApp
from tests.e2e.conftest import controlled, ready


async def test_chromium_reports_no_installability_errors(profile: Any, start: str) -> None:
    page = profile.pages[0] if profile.pages else await profile.new_page()
    await page.goto(start)
    await ready(page)
    await controlled(page)
    cdp = await profile.new_cdp_session(page)
    errors = (await cdp.send("Page.getInstallabilityErrors"))["installabilityErrors"]
    assert errors == []
    manifest = await cdp.send("Page.getAppManifest")
    assert manifest["errors"] == [] and manifest["url"].endswith("/app/manifest.zh-CN.webmanifest")
    data = json.loads(manifest["data"])
    assert data["display"] == "standalone" and data["start_url"].startswith("/") and data["scope"] == "/"
    assert data["lang"] == "zh-CN" and data["name"].startswith("商圈") and data["short_name"] == "商圈"
    assert data["theme_color"] and data["background_color"] and data["id"] == "/"
    icons = {(i["sizes"], i.get("purpose", "any")) for i in data["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("192x192", "maskable"), ("512x512", "maskable")} <= icons
    assert data["screenshots"] and all(s["form_factor"] == "narrow" for s in data["screenshots"])


def png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR"
    width, height = struct.unpack(">II", body[16:24])
    return width, height


@pytest.mark.parametrize("locale, name", [("zh-CN", "商圈"), ("zh-HK", "商圈"), ("en", "Shangquan")])
async def test_localized_manifests_and_their_images(app_server: RunningApp, locale: str, name: str) -> None:
    async with httpx.AsyncClient(base_url=app_server.url) as client:
        response = await client.get(f"/app/manifest.{locale}.webmanifest")
        assert response.headers["content-type"] == "application/manifest+json"
        data = response.json()
        assert data["lang"] == locale and data["short_name"] == name and data["id"] == "/"
        for image in data["icons"] + data["screenshots"]:
            got = await client.get(image["src"])
            assert got.status_code == 200, image["src"]
            if image["type"] == "image/png":
                assert "x".join(map(str, png_size(got.content))) == image["sizes"], image["src"]
        assert (await client.get("/app/manifest.fr.webmanifest")).status_code == 404
