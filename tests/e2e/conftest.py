"""Browser tests of the shopper PWA: Playwright (async API) driving Debian's /usr/bin/chromium.

They run against the real app (`app_server`) on a 390×844 phone viewport. Without /usr/bin/chromium
(CI installs it) the browser tests are skipped; the shell's size budget needs no browser.
Screenshots go to $SHANGQUAN_ARTIFACTS (default var/artifacts, which git ignores).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import ROOT
from tests.conftest import RunningApp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
PHONE = {"width": 390, "height": 844}


def artifacts_dir() -> Path:
    path = Path(os.environ.get("SHANGQUAN_ARTIFACTS") or ROOT / "var" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as running:
        yield running


@pytest.fixture(scope="session")
async def browser(playwright: Any) -> AsyncIterator[Any]:
    launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    await launched.close()


# Every document of the context reports Content-Security-Policy violations to the test (an init script runs
# before any script of the page, on every navigation), so a screen that needs something the policy forbids
# fails its test instead of silently losing a feature.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__sqCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "(inline)"} in ${e.documentURI}` +
    (e.sourceFile ? ` (${e.sourceFile}:${e.lineNumber})` : ""));
});
"""


async def watch_csp(ctx: Any) -> list[str]:
    violations: list[str] = []

    def record(violation: str) -> None:
        violations.append(violation)

    await ctx.expose_function("__sqCspViolation", record)
    await ctx.add_init_script(CSP_LISTENER)
    return violations


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    """A fresh profile per test: no service worker, caches or localStorage from other tests."""
    ctx = await browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN",
                                    timezone_id="Asia/Shanghai", service_workers="allow")
    ctx.set_default_timeout(10_000)
    uncaught: list[Any] = []
    ctx.on("page", lambda page: page.on("pageerror", lambda error: uncaught.append(error)))
    violations = await watch_csp(ctx)
    yield ctx
    await ctx.close()
    assert not uncaught, f"uncaught errors in the page: {uncaught}"
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
async def profile(playwright: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """A context on an on-disk profile: what installability needs (an incognito context is never installable)."""
    ctx = await playwright.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, viewport=PHONE, locale="zh-CN")
    ctx.set_default_timeout(10_000)
    violations = await watch_csp(ctx)
    yield ctx
    await ctx.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture(scope="session")
async def start(app_server: RunningApp) -> str:
    """The app's home URL: "/" once the placeholder page is gone, "/app/" (the same shell) until then."""
    async with httpx.AsyncClient(base_url=app_server.url) as client:
        home = await client.get("/")
    return app_server.url + ("/" if 'rel="manifest"' in home.text else "/app/")


async def ready(page: Any) -> None:
    """Waits until the current screen has rendered its data."""
    # A function, not an expression: Playwright evaluates a bare expression with eval(), which the CSP blocks.
    await page.wait_for_function(
        "() => document.documentElement.dataset.ready === location.pathname && "
        "!document.querySelector('main[aria-busy]')")


async def controlled(page: Any) -> None:
    """Waits until an activated service worker controls the page."""
    await page.wait_for_function(
        "() => navigator.serviceWorker.controller !== null && "
        "navigator.serviceWorker.controller.state === 'activated'")


async def until(target: Any, script: str, arg: Any = None) -> Any:
    """Polls an async page (or worker) function until it returns something truthy (10 s at most), and
    returns that. (wait_for_function does not await a predicate's promise.)"""
    async with asyncio.timeout(10):
        while not (value := await target.evaluate(script, arg)):
            await asyncio.sleep(0.05)
    return value
