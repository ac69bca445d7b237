"""The shell (HTML + JS + CSS the service worker precaches, and the worker itself) stays within
100 KB gzip-compressed, and is served so that only the service worker caches it."""

from __future__ import annotations

import gzip
import json
import re

import httpx

from tests.conftest import RunningApp

BUDGET = 100 * 1024


async def test_shell_is_at_most_100_kb_compressed(app_server: RunningApp) -> None:
    async with httpx.AsyncClient(base_url=app_server.url, headers={"accept-encoding": "identity"}) as client:
        worker = await client.get("/sw.js")
        precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", worker.text).group(1))  # type: ignore[union-attr]
        urls = [e["url"] for e in precache if re.search(r"\.(html|js|css)$", e["url"])]
        assert {"/app/index.html", "/app/app.js", "/app/style.css", "/app/operations.js"} <= set(urls)
        sizes = {"/sw.js": len(gzip.compress(worker.content, 9))}
        for url in urls:
            response = await client.get(url)
            assert response.status_code == 200, url
            sizes[url] = len(gzip.compress(response.content, 9))
    total = sum(sizes.values())
    print(f"shell: {len(sizes)} files, {total / 1024:.1f} KB gzip")
    assert total <= BUDGET, sizes


async def test_shell_is_served_for_the_service_worker_only(app_server: RunningApp) -> None:
    async with httpx.AsyncClient(base_url=app_server.url) as client:
        worker = await client.get("/sw.js")
        assert worker.headers["service-worker-allowed"] == "/"
        assert worker.headers["content-type"].startswith("text/javascript")
        assert worker.headers["cache-control"] == "no-store"
        for path in ("/app/", "/merchants", "/festivals", "/gifts", "/search", "/favourites", "/inbox",
                     "/d/RGlzdHJpY3Q6eA", "/m/TWVyY2hhbnQ6eA"):
            page = await client.get(path)
            assert page.status_code == 200 and 'rel="manifest"' in page.text, path
            assert page.headers["cache-control"] == "no-store"
        module = await client.get("/app/app.js", headers={"accept-encoding": "gzip"})
        assert module.headers["content-encoding"] == "gzip" and module.headers["cache-control"] == "no-store"
        operations = await client.get("/app/operations.js")
        assert re.search(r'"Home": "[0-9a-f]{64}"', operations.text)
        assert (await client.get("/app/../server/settings.py")).status_code == 404
        assert (await client.get("/app/sw.js")).status_code == 404
