"""One header policy for every kind of route, checked on the real app over HTTP: the shopper app's shell and
assets, the back office, GraphQL and its explorer, health, metrics — answers, redirects, 304s and errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from server.plumbing.headers import Kind
from server.plumbing.persisted import digest
from tests.conftest import RunningApp
from tests.ops.servers import serve

ROOT = Path(__file__).resolve().parents[2]
DISTRICTS = (ROOT / "graphql" / "operations" / "Districts.graphql").read_text(encoding="utf-8")
PERSISTED = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest(DISTRICTS)}})}


def directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def assert_policy(response: httpx.Response, kind: Kind) -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    headers = response.headers
    csp = directives(headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"], where  # no inline script, no eval, no other origin
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"], where
    assert csp["frame-ancestors"] == ["'none'"] and headers["x-frame-options"] == "DENY", where
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin", where
    features = dict(item.strip().split("=") for item in headers["permissions-policy"].split(","))
    allowed = {name for name, value in features.items() if value == "(self)"}
    assert allowed == {Kind.APP: {"geolocation"}, Kind.BACK_OFFICE: {"camera"}, Kind.API: set()}[kind], where
    assert all(value in ("()", "(self)") for value in features.values()), where
    assert "strict-transport-security" not in headers, where  # plain http


async def test_every_kind_of_route_carries_the_policy(http: httpx.AsyncClient) -> None:
    app = [await http.get(path) for path in ("/", "/d/huaqiangbei", "/merchants", "/app/app.js", "/app/boot.js",
                                             "/app/style.css", "/app/operations.js", "/sw.js",
                                             "/app/manifest.en.webmanifest", "/app/no-such-file.js")]
    icon = await http.get("/app/icons/icon-192.png")
    app += [icon, await http.get("/app/icons/icon-192.png", headers={"if-none-match": icon.headers["etag"]})]
    app += [await http.get("/healthz"), await http.get("/readyz"), await http.get("/metrics"),
            await http.get("/no-such-page"), await http.post("/ingest/crowd", json={})]
    back_office = [await http.get(path) for path in ("/admin", "/admin/", "/admin/login", "/admin/static/admin.css",
                                                     "/admin/no-such-page")]
    back_office.append(await http.post("/admin/login", data={"email": "a@b.cc", "password": "x"}))
    api = [await http.post("/graphql", json={"query": "{ districts { id } }"}),
           await http.get("/graphql", params=PERSISTED),
           await http.get("/graphql", headers={"accept": "text/html"}),
           await http.get("/explorer/vendor/graphiql.min.js"), await http.get("/explorer/schema.graphql")]
    cached = api[1]
    api.append(await http.get("/graphql", params=PERSISTED, headers={"if-none-match": cached.headers["etag"]}))
    statuses = set()
    for kind, responses in ((Kind.APP, app), (Kind.BACK_OFFICE, back_office), (Kind.API, api)):
        for response in responses:
            assert_policy(response, kind)
            statuses.add(response.status_code)
    assert {200, 304, 308, 401, 404}.issubset(statuses), statuses
    assert app[0].headers["content-type"].startswith("text/html") and api[-1].status_code == 304


async def test_the_pwa_shell_and_offline_page_have_no_inline_script(http: httpx.AsyncClient) -> None:
    for path in ("/", "/app/offline.html"):
        html = (await http.get(path)).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        assert scripts or path.endswith("offline.html")
        for attributes, body in scripts:
            assert 'src="/app/' in attributes and not body.strip(), (path, attributes, body)
        assert not re.search(r"\son[a-z]+=", html), path  # no inline event handlers either


async def test_hsts_only_when_a_trusted_proxy_reports_https(http: httpx.AsyncClient, app_server: RunningApp) -> None:
    # The test app trusts 127.0.0.1 (uvicorn's FORWARDED_ALLOW_IPS default), as a proxy on the same host would be.
    secure = await http.get("/", headers={"x-forwarded-proto": "https"})
    assert secure.headers["strict-transport-security"] == "max-age=31536000"
    admin = await http.get("/admin/login", headers={"x-forwarded-proto": "https"})
    assert "strict-transport-security" in admin.headers
    assert "strict-transport-security" not in (await http.get("/")).headers
    # A client that is not a trusted proxy cannot claim HTTPS.
    async with serve(app_server.settings, load_content=False, forwarded_allow_ips="10.255.0.1") as url, \
            httpx.AsyncClient(base_url=url) as other:
        claimed = await other.get("/", headers={"x-forwarded-proto": "https"})
        assert claimed.status_code == 200 and "strict-transport-security" not in claimed.headers
