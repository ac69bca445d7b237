"""GraphQL over HTTP as the current spec has it: `Accept: application/graphql-response+json` gets that media type
and status codes that say whether anything ran (400 and no `data` for a request error); `application/json` keeps
the legacy answers (200, `data: null`)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from server.api.ids import to_global
from server.api.view import wants_graphql_response
from server.plumbing.persisted import digest

ROOT = Path(__file__).resolve().parents[2]
DISTRICTS = (ROOT / "graphql" / "operations" / "Districts.graphql").read_text(encoding="utf-8")
SPEC = "application/graphql-response+json"
REQUEST_ERRORS = [
    ("{ districts { id ", {}, "GRAPHQL_PARSE_FAILED"),
    ("{ districts { noSuchField } }", {}, "GRAPHQL_VALIDATION_FAILED"),
    ("query ($first: Int) { merchants(first: $first) { totalCount } }", {"first": "many"}, "GRAPHQL_VALIDATION_FAILED"),
    ("query ($id: ID!) { merchant(id: $id) { name } }", {}, None),  # a required variable missing
]


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS)
async def test_a_request_error_is_400_without_data(http: httpx.AsyncClient, query: str, variables: dict[str, object],
                                                   code: str | None) -> None:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers={"accept": SPEC})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == f"{SPEC}; charset=utf-8"
    body = response.json()
    assert "data" not in body and body["errors"], body
    if code:
        assert body["errors"][0]["extensions"]["code"] == code, body

    legacy = await http.post("/graphql", json={"query": query, "variables": variables},
                             headers={"accept": "application/json"})
    assert legacy.status_code == 200 and legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None and legacy.json()["errors"]


async def test_executed_answers_are_200_with_data_either_way(http: httpx.AsyncClient) -> None:
    ok = await http.post("/graphql", json={"query": "{ districts { id } }"}, headers={"accept": SPEC})
    assert ok.status_code == 200 and ok.headers["content-type"] == f"{SPEC}; charset=utf-8"
    assert ok.json()["data"]["districts"]
    # A field error happens during execution: the answer has its partial data and stays 200.
    missing = to_global("Merchant", "no-such-shop")
    partial = await http.post("/graphql", json={"query": '{ districts { id } merchant(id: "%s") { name } }' % missing},
                              headers={"accept": SPEC})
    body = partial.json()
    assert partial.status_code == 200 and body["data"]["districts"] and body["data"]["merchant"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND" and body["errors"][0]["path"] == ["merchant"]
    persisted = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest(DISTRICTS)}})}
    get = await http.get("/graphql", params=persisted, headers={"accept": f"{SPEC}, application/json;q=0.9"})
    assert get.status_code == 200 and get.headers["content-type"].startswith(SPEC) and get.json()["data"]
    assert "Accept" in get.headers["vary"]  # a cache must not hand this answer to a legacy client
    for accept in (None, "*/*", "application/json"):
        legacy = await http.get("/graphql", params=persisted, headers={"accept": accept} if accept else {})
        assert legacy.headers["content-type"] == "application/json", accept


@pytest.mark.parametrize(("accept", "expected"), [
    (SPEC, True), (f"{SPEC}, application/json", True), (f"application/json, {SPEC}", True),
    (f"application/json;q=0.9, {SPEC}", True), (f"{SPEC};q=0.5, application/json", False),
    ("application/json", False), ("*/*", False), ("", False), (f"{SPEC};q=0", False), (f"{SPEC};q=x", False),
])
def test_negotiation(accept: str, expected: bool) -> None:
    assert wants_graphql_response(accept) is expected
