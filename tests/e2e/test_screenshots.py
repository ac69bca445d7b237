"""Screenshots of home, district and merchant as test artifacts, at 390 px and at 360 px (nothing may
overflow sideways at 360)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from server.api.ids import to_global
from tests.e2e.conftest import artifacts_dir, ready, watch_csp

SCREENS = {
    "home": "",
    "district": f"d/{to_global('District', 'huaqiangbei')}",
    "merchant": f"m/{to_global('Merchant', 'hqb-data-rescue-centre')}",
}


@pytest.mark.parametrize("width", [390, 360])
async def test_screenshots_of_home_district_and_merchant(browser: Any, start: str, width: int) -> None:
    context = await browser.new_context(viewport={"width": width, "height": 844}, device_scale_factor=2,
                                        locale="zh-CN", timezone_id="Asia/Shanghai", reduced_motion="reduce")
    violations = await watch_csp(context)
    try:
        page = await context.new_page()
        base = start if start.endswith("/") else start + "/"
        root = base.removesuffix("app/")
        for name, path in SCREENS.items():
            await page.goto(base if name == "home" else root + path)
            await ready(page)
            await expect(page.locator("main h1")).to_be_visible()
            overflow = await page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{name} is {overflow}px wide at {width}px"
            await page.screenshot(path=artifacts_dir() / f"{name}-{width}.png")
    finally:
        await context.close()
    assert not violations, violations
