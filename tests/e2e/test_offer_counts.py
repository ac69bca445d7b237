"""What the merchant's back office counts: a shopper seeing an offer (view) and copying its coupon (save)."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect

from server.api.ids import from_global
from tests.conftest import RunningApp, gql
from tests.e2e.conftest import ready


async def test_opening_a_merchant_counts_views_and_copying_a_coupon_counts_a_save(
        context: Any, start: str, http: Any, db_client: Any, app_server: RunningApp) -> None:
    body = await gql(http, "{ merchants(filter: {hasActiveOffer: true}, first: 50) { edges { node { id "
                           "offers { id couponCode } } } } }")
    shop = next(e["node"] for e in body["data"]["merchants"]["edges"]
                if any(o["couponCode"] for o in e["node"]["offers"]))
    offer = next(o for o in shop["offers"] if o["couponCode"])
    offers = db_client[app_server.db_name].offers
    offer_id = from_global(offer["id"])[1]
    before = await offers.find_one({"_id": offer_id})
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    await page.goto(start.rstrip("/").removesuffix("/app") + f"/m/{shop['id']}")
    await ready(page)
    copy = page.locator(f'[data-offer="{offer["id"]}"]')
    await expect(copy).to_be_visible()
    await copy.click()

    async def counts() -> tuple[int, int]:
        doc = await offers.find_one({"_id": offer_id})
        return doc.get("views", 0), doc.get("saves", 0)

    async with asyncio.timeout(10):
        while await counts() != (before.get("views", 0) + 1, before.get("saves", 0) + 1):
            await asyncio.sleep(0.1)
    await page.reload()  # a second look in the same session is not a second view
    await ready(page)
    await asyncio.sleep(0.5)
    assert (await counts())[0] == before.get("views", 0) + 1
    await page.close()
