"""GET with a persisted-query hash runs the PWA's documents and is cacheable."""

from __future__ import annotations

import json
from typing import Any

import httpx

from server.domain.accounts import service as accounts
from server.plumbing.persisted import allow_list, digest
from server.settings import ROOT
from tests.conftest import RunningApp
from tests.support import make_account

DISTRICTS = (ROOT / "graphql" / "operations" / "Districts.graphql").read_text(encoding="utf-8")


def params(sha: str, variables: dict[str, object] | None = None) -> dict[str, str]:
    return {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha}}),
            "variables": json.dumps(variables or {})}


async def test_get_by_hash_runs_the_document_and_may_be_cached(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params=params(digest(DISTRICTS), {"locale": "en"}))
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body and len(body["data"]["districts"]) >= 7
    assert response.headers["cache-control"] == "public, no-cache"  # stored, but revalidated every time
    assert "Accept-Language" in response.headers["vary"]
    again = await http.get("/graphql", params=params(digest(DISTRICTS), {"locale": "en"}),
                           headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = await http.get("/graphql", params=params(digest(DISTRICTS), {"locale": "zh-HK"}),
                           headers={"if-none-match": response.headers["etag"]})
    assert other.status_code == 200 and other.headers["etag"] != response.headers["etag"]


async def test_every_operation_document_is_on_the_allow_list() -> None:
    files = sorted((ROOT / "graphql" / "operations").glob("*.graphql"))
    assert set(allow_list()) == {digest(p.read_text(encoding="utf-8")) for p in files}


async def test_unknown_hash_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params=params("0" * 64))
    assert response.status_code == 400
    assert "PersistedQueryNotFound" in response.text


async def test_hash_must_match_a_given_query(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": "{ districts { name } }", "extensions": {
        "persistedQuery": {"version": 1, "sha256Hash": digest("something else")}}})
    assert response.status_code == 400


async def test_post_and_errors_are_not_cacheable(http: httpx.AsyncClient, db_client: Any,
                                                 app_server: RunningApp) -> None:
    response = await http.post("/graphql", json={"query": "{ districts { name } }"})
    assert response.headers["cache-control"] == "no-store"
    failed = await http.get("/graphql", params={"query": '{ merchant(id: "x") { name } }'})
    assert failed.headers["cache-control"] == "no-store"
    # an answer for a bearer token is never kept by a shared cache, even a GET that succeeded
    operator = await make_account(db_client[app_server.db_name], "operator", district_ids=["huaqiangbei"])
    token = await accounts.create_token(db_client[app_server.db_name], operator.actor(), "ops", ["districts"])
    personal = await http.get("/graphql", params=params(digest(DISTRICTS), {"locale": "en"}),
                              headers={"authorization": f"Bearer {token.secret}"})
    assert "errors" not in personal.json() and personal.headers["cache-control"] == "no-store"
