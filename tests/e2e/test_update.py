"""A new version of the shell: the waiting service worker is announced ("new version available —
reload"), and the reload activates it. Runs a second app on a copy of pwa/ so that the copy can change."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import expect

from server.api.live.protocol import UVICORN_WS
from server.asgi import create_app
from server.services import embedded
from tests.conftest import RunningApp
from tests.e2e.conftest import controlled, ready, until

ASK_VERSION = """() => new Promise((resolve) => {
    navigator.serviceWorker.addEventListener("message", (e) => resolve(e.data.version), { once: true });
    navigator.serviceWorker.controller.postMessage({ type: "VERSION" });
})"""


@pytest.fixture
async def copied_app(app_server: RunningApp, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    pwa = tmp_path / "pwa"
    shutil.copytree(app_server.settings.pwa_dir, pwa, ignore=shutil.ignore_patterns("screenshots"))
    app = create_app(replace(app_server.settings, pwa_dir=pwa), load_content_on_start=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=embedded.free_port(), log_level="warning",
                                           lifespan="on", **UVICORN_WS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{server.config.port}", pwa
    server.should_exit = True
    await task


async def test_new_version_is_offered_and_activated_on_reload(context: Any, copied_app: tuple[str, Path]) -> None:
    url, pwa = copied_app
    page = await context.new_page()
    await page.goto(url + "/app/")
    await ready(page)
    await controlled(page)
    before = await page.evaluate(ASK_VERSION)

    with (pwa / "style.css").open("a", encoding="utf-8") as css:
        css.write("\n/* a new release */\n")
    await page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
    toast = page.locator("#toast")
    await expect(toast).to_contain_text("有新版本可用")
    await until(page, "navigator.serviceWorker.getRegistration().then((r) => r.waiting !== null)")
    assert await page.evaluate(ASK_VERSION) == before  # the old worker keeps serving until asked

    async with page.expect_navigation():
        await toast.get_by_role("button", name="刷新").click()
    await ready(page)
    await controlled(page)
    assert await page.evaluate(ASK_VERSION) != before
    css = await page.evaluate("fetch('/app/style.css').then((r) => r.text())")
    assert css.endswith("/* a new release */\n")
    await expect(toast).to_be_hidden()
