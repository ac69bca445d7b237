"""After one visit the service worker alone can run the app: shell from the precache, data from the
cached persisted queries. The server sends everything with `Cache-Control: no-store`, so the HTTP cache
cannot be what answers."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import expect

from server.plumbing.persisted import digest
from server.settings import ROOT
from tests.conftest import RunningApp, gql
from tests.e2e.conftest import controlled, ready, until

HOME_HASH = digest((ROOT / "graphql" / "operations" / "Home.graphql").read_text(encoding="utf-8"))


async def test_reload_offline_after_one_visit(context: Any, start: str, app_server: RunningApp,
                                              http: httpx.AsyncClient) -> None:
    districts = len((await gql(http, "{ districts { id } }"))["data"]["districts"])
    page = await context.new_page()
    response = await page.goto(start)
    assert response is not None and response.headers["cache-control"] == "no-store"
    await ready(page)
    await expect(page.locator(".districts li")).to_have_count(districts)
    await controlled(page)
    # The first visit's data came before the worker; it fetches it again through the worker, which keeps it.
    await until(page, """async (hash) => {
        const cache = await caches.open('sq-api-v1');
        return (await cache.keys()).some((r) => r.url.includes(hash));
    }""", HOME_HASH)

    await context.set_offline(True)
    try:
        assert await page.evaluate("fetch('/healthz?' + Date.now()).then(() => 'online', () => 'offline')") == "offline"
        await page.reload()
        await ready(page)
        # Rendered from the cached persisted query by the precached shell and modules.
        await expect(page.locator(".districts li")).to_have_count(districts)
        await expect(page.locator(".districts")).to_contain_text("华强北")
        await expect(page.locator("#netbar")).to_have_text("离线中 · 正在显示已保存的内容")

        # A district never opened before: an honest "not saved yet", not a broken page, and the offline
        # line no longer claims to show saved content above it.
        await page.locator(".districts").get_by_role("link", name=re.compile("大浪")).click()
        await expect(page.get_by_role("alert")).to_contain_text("还没有保存过")
        await expect(page.locator("#netbar")).to_have_text("离线中")

        # A navigation outside the app gets the precached offline page.
        await page.goto(app_server.url + "/healthz")
        await expect(page.get_by_role("heading", level=1)).to_have_text("你已离线")
    finally:
        await context.set_offline(False)
