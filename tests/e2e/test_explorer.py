"""The API explorer in a real browser: GraphiQL from the app's own files, the schema's docs, a query run —
all under the app's Content-Security-Policy (the `context` fixture fails on any violation) and without
a single request leaving the app's origin."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import expect

from tests.conftest import RunningApp


async def test_the_explorer_shows_the_docs_and_runs_a_query_offline(context: Any, app_server: RunningApp) -> None:
    origin = urlsplit(app_server.url).netloc
    elsewhere: list[str] = []
    # Anything not from the app fails: the page must work where public CDNs are unreachable.

    async def refuse(route: Any) -> None:
        elsewhere.append(route.request.url)
        await route.abort()

    await context.route(lambda url: urlsplit(url).netloc != origin, refuse)
    page = await context.new_page()
    await page.set_viewport_size({"width": 1280, "height": 900})
    response = await page.goto(f"{app_server.url}/graphql")
    assert response.status == 200 and "frame-ancestors 'none'" in response.headers["content-security-policy"]

    docs = page.locator(".graphiql-doc-explorer")
    await expect(docs).to_be_visible()
    await expect(docs.get_by_text("Query", exact=True).first).to_be_visible()
    await docs.get_by_text("Query", exact=True).first.click()
    await expect(docs.get_by_text("districts", exact=True).first).to_be_visible()

    await page.locator(".graphiql-execute-button").click()
    result = page.locator(".graphiql-response")
    await expect(result).to_contain_text('"districts"')
    await expect(result).to_contain_text("华强北")
    assert not elsewhere, elsewhere
