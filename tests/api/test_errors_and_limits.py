"""Bad input gets a coded error, never a 500; unexpected failures are masked with a request id."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from tests.conftest import RunningApp, gql

HQB = to_global("District", "huaqiangbei")


def code_of(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


@pytest.mark.parametrize(("query", "code"), [
    ('{ merchant(id: "not-base64!!") { name } }', "INVALID_ID"),
    ('{ merchant(id: "%s") { name } }' % to_global("District", "huaqiangbei"), "INVALID_ID"),
    ('{ merchant(id: "%s") { name } }' % to_global("Merchant", "no-such-shop"), "NOT_FOUND"),
    ('{ node(id: "%s") { id } }' % to_global("Planet", "mars"), "NOT_FOUND"),
    ("{ merchants(first: 51) { totalCount } }", "PAGE_SIZE_EXCEEDED"),
    ("{ merchants(first: -1) { totalCount } }", "BAD_USER_INPUT"),
    ('{ merchants(after: "garbage") { totalCount } }', "INVALID_CURSOR"),
    ("{ merchants(filter: {near: {lat: 22.5, lng: 114.1, radiusMeters: -5}}) { totalCount } }", "BAD_USER_INPUT"),
    ("{ merchants(filter: {near: {lat: 95, lng: 114.1, radiusMeters: 500}}) { totalCount } }", "BAD_USER_INPUT"),
    ("{ merchants(filter: {near: {lat: 22.5, lng: 190, radiusMeters: 500}}) { totalCount } }", "BAD_USER_INPUT"),
    ("{ merchants(filter: {near: {lat: 22.5, lng: 114, radiusMeters: 90000}}) { totalCount } }", "BAD_USER_INPUT"),
    ('{ offers(filter: {endingWithinHours: 0}) { totalCount } }', "BAD_USER_INPUT"),
    ('{ districts(locale: "xx-YY") { name } }', "UNSUPPORTED_LOCALE"),
    ("{ districts { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ("{ districts { name ", "GRAPHQL_PARSE_FAILED"),
])
async def test_bad_input_gets_a_coded_error(http: httpx.AsyncClient, query: str, code: str) -> None:
    body = await gql(http, query)
    assert code_of(body) == code
    assert body["errors"][0]["message"]


async def test_over_deep_query(http: httpx.AsyncClient) -> None:
    deep = "{ merchants { edges { node { district { merchants { edges { node { area { district { areas { " \
           "district { name } } } } } } } } } } } }"
    assert code_of(await gql(http, deep)) == "QUERY_TOO_DEEP"


async def test_too_many_aliases(http: httpx.AsyncClient) -> None:
    wide = "{ " + " ".join(f"a{i}: districts {{ name }}" for i in range(40)) + " }"
    assert code_of(await gql(http, wide)) == "TOO_MANY_ALIASES"


async def test_too_many_tokens(http: httpx.AsyncClient) -> None:
    huge = "{ districts { " + " ".join(["name"] * 2500) + " } }"
    assert code_of(await gql(http, huge)) == "QUERY_TOO_LARGE"


async def test_cost_budget(http: httpx.AsyncClient) -> None:
    costly = """{ merchants(first: 50) { edges { node { products { soldBy { offers { merchant {
        products { name } } } } } } } } }"""
    body = await gql(http, costly)
    assert code_of(body) == "QUERY_TOO_COSTLY"
    assert body["errors"][0]["extensions"]["cost"] > body["errors"][0]["extensions"]["max"]


async def test_the_district_page_fits_the_budget(http: httpx.AsyncClient) -> None:
    body = await gql(http, """{ district(id: "%s") { name areas { name capacity } merchants(first: 20) {
        totalCount edges { node { name openNow closesAt categories { name } offers { title couponCode validUntil }
        products { name } } } } } }""" % HQB)
    assert "errors" not in body


async def test_unexpected_failure_is_masked_and_logged_with_the_request_id(
    http: httpx.AsyncClient, db_client: Any, app_server: RunningApp, caplog: pytest.LogCaptureFixture,
) -> None:
    # A document the typed model cannot read (no location): a real fault, not a client mistake.
    merchants = db_client[app_server.db_name].merchants
    await merchants.insert_one({"_id": "broken-shop", "district_id": "huaqiangbei", "area_id": "x",
                                "name": {"zh-CN": "坏"}, "status": "published"})
    try:
        with caplog.at_level(logging.ERROR, logger="shangquan.graphql"):
            response = await http.post("/graphql", json={
                "query": '{ merchant(id: "%s") { name } }' % to_global("Merchant", "broken-shop")},
                headers={"x-request-id": "test-request-0001"})
    finally:
        await merchants.delete_one({"_id": "broken-shop"})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "test-request-0001"}
    assert "location" not in error["message"] and "KeyError" not in error["message"]
    assert response.headers["x-request-id"] == "test-request-0001"
    assert any("test-request-0001" in r.getMessage() for r in caplog.records)


async def test_a_cursor_from_another_ordering_is_refused_not_a_crash(http: httpx.AsyncClient) -> None:
    plain = await gql(http, "{ merchants(first: 2) { pageInfo { endCursor } } }")
    cursor = plain["data"]["merchants"]["pageInfo"]["endCursor"]
    body = await gql(http, 'query($a: String) { merchants(filter: {query: "华强"}, first: 2, after: $a) '
                           '{ totalCount } }', {"a": cursor})
    assert code_of(body) == "INVALID_CURSOR"
