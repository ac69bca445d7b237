"""A repeat visit paints public reads from the device, then the service worker revalidates them with
If-None-Match: an unchanged answer comes back as a 304 (from the server's public cache, no database)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from playwright.async_api import expect

from server.plumbing.persisted import digest
from server.settings import ROOT
from tests.e2e.conftest import controlled, ready, until

HOME_HASH = digest((ROOT / "graphql" / "operations" / "Home.graphql").read_text(encoding="utf-8"))


def graphql_statuses(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [int(r.status) for r in caplog.records
            if r.name == "shangquan.access" and getattr(r, "path", "").startswith("/graphql")
            and getattr(r, "method", "") == "GET"]


async def test_repeat_visit_revalidates_with_if_none_match(context: Any, start: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shangquan.access")
    page = await context.new_page()
    await page.goto(start)
    await ready(page)
    await controlled(page)
    await until(page, """async (hash) => {
        const cache = await caches.open('sq-api-v1');
        return (await cache.keys()).some((r) => r.url.includes(hash));
    }""", HOME_HASH)
    caplog.clear()

    await page.reload()
    await ready(page)
    await expect(page.locator(".districts li").first).to_be_visible()
    async with asyncio.timeout(10):  # the background revalidation reaches the server after the paint
        while 304 not in graphql_statuses(caplog):
            await asyncio.sleep(0.05)
    # the device kept its copy: still cached, still the same answer the page shows
    assert await page.evaluate("""async (hash) => {
        const cache = await caches.open('sq-api-v1');
        return (await cache.keys()).filter((r) => r.url.includes(hash)).length;
    }""", HOME_HASH) == 1
