"""The API explorer over HTTP: a browser's GET of /graphql gets the page, every API client's request still gets
GraphQL, the page's files are the app's own pinned copies, and GRAPHQL_IDE=off hides it. (It is driven in a
real browser by tests/e2e/test_explorer.py.)"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from server.plumbing.persisted import digest
from server.settings import Settings, SettingsError
from tests.conftest import RunningApp
from tests.ops.servers import serve

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "server" / "web" / "explorer" / "vendor"
DISTRICTS = (ROOT / "graphql" / "operations" / "Districts.graphql").read_text(encoding="utf-8")
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_a_browser_gets_the_explorer_from_the_apps_own_files(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"accept": BROWSER})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text and not re.search(r"(src|href)=\"(https?:)?//", page.text)  # no CDN
    assets = re.findall(r'(?:src|href)="(/explorer/[^"]+)"', page.text)
    assert "/explorer/vendor/graphiql.min.js" in assets and "/explorer/explorer.js" in assets
    for path in [*assets, "/explorer/schema.graphql"]:
        served = await http.get(path)
        assert served.status_code == 200, path
        assert "gzip" in served.headers.get("content-encoding", "") or len(served.content) < 1000, path
        again = await http.get(path, headers={"if-none-match": served.headers["etag"]})
        assert again.status_code == 304, path
    schema = (await http.get("/explorer/schema.graphql")).text
    assert "type Query" in schema and (ROOT / "graphql" / "schema.graphql").read_text().strip() == schema.strip()
    assert (await http.get("/explorer/../settings.py")).status_code == 404
    assert (await http.get("/explorer/vendor/README.md")).status_code == 404


def test_the_vendored_files_are_the_pinned_unmodified_ones() -> None:
    table = (VENDOR / "README.md").read_text()
    rows = re.findall(r"^\| ([\w.-]+\.(?:js|css)) \|[^|]+\| ([\d.]+) \| MIT, (LICENSE\.[\w-]+) \| ([0-9a-f]{64}) \|$",
                      table, flags=re.M)
    assert {name for name, *_ in rows} == {p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css")}
    for name, _version, licence, sha in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == sha, name
        assert "MIT License" in (VENDOR / licence).read_text(), licence


async def test_api_clients_are_unaffected(http: httpx.AsyncClient) -> None:
    persisted = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest(DISTRICTS)}})}
    # A persisted-query GET from a browser's address bar or a service worker still runs the query.
    for accept in (BROWSER, "*/*", "application/json"):
        response = await http.get("/graphql", params=persisted, headers={"accept": accept})
        assert response.status_code == 200 and response.json()["data"]["districts"], accept
    query = await http.get("/graphql", params={"query": "{ districts { id } }"}, headers={"accept": BROWSER})
    assert query.status_code == 200 and query.json()["data"]["districts"]
    post = await http.post("/graphql", json={"query": "{ districts { id } }"}, headers={"accept": BROWSER})
    assert post.status_code == 200 and post.json()["data"]["districts"]
    no_query = await http.get("/graphql", headers={"accept": "application/json"})
    assert no_query.status_code == 400 and "text/html" not in no_query.headers["content-type"]


async def test_graphql_ide_off_hides_it(app_server: RunningApp) -> None:
    async with serve(replace(app_server.settings, graphql_ide=False), load_content=False) as url, \
            httpx.AsyncClient(base_url=url) as client:
        hidden = await client.get("/graphql", headers={"accept": BROWSER})
        assert hidden.status_code == 400 and "text/html" not in hidden.headers["content-type"]
        works = await client.post("/graphql", json={"query": "{ districts { id } }"})
        assert works.status_code == 200 and works.json()["data"]["districts"]


@pytest.mark.parametrize("raw", ["on", "ON", "1", "yes", "", "off", "0", "no"])
def test_graphql_ide_setting(raw: str) -> None:
    expected = raw.lower() not in ("off", "0", "no")
    assert Settings.from_env({"GRAPHQL_IDE": raw}).graphql_ide is expected


def test_graphql_ide_typo_is_refused_in_one_line() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"GRAPHQL_IDE": "maybe"})
    assert str(info.value) == "GRAPHQL_IDE must be on or off, got 'maybe'"
