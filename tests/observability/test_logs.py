"""JSON log lines, the access line per request, and no secret ever reaching the output."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import httpx

from server.observability.logs import REDACTED, configure_logging, redact
from tests.observability.conftest import BEARER, COOKIE, PASSWORD, SECRETS, SQ_TOKEN, SQS_KEY, Captured


async def test_every_line_is_json_and_carries_the_request_id(local: httpx.AsyncClient, captured: Captured) -> None:
    response = await local.get("/hello", headers={"x-request-id": "req-abcdef-123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-abcdef-123"
    lines = captured.text.splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    handler_line = next(r for r in records if r["logger"] == "shangquan.test")
    assert handler_line["message"] == "hello from the handler"
    assert handler_line["level"] == "INFO"
    assert handler_line["shop"] == "hqb-screen-doctor"  # extra fields travel
    assert all(r["request_id"] == "req-abcdef-123" for r in records)
    when = datetime.fromisoformat(handler_line["time"].replace("Z", "+00:00"))
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def test_lines_outside_a_request_have_no_request_id(captured: Captured) -> None:
    logging.getLogger("shangquan.worker").info("worker ready")
    (record,) = captured.records()
    assert record["message"] == "worker ready" and "request_id" not in record


async def test_one_access_line_per_request_without_the_query_string(local: httpx.AsyncClient,
                                                                    captured: Captured) -> None:
    await local.get("/hello?variables=%7B%22secret%22%3A1%7D")
    await local.get("/nowhere")
    await local.get("/boom")
    await local.get("/admin/invite/InvitationTokenValue123")
    access = captured.access()
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("GET", "/hello", 200), ("GET", "/nowhere", 404), ("GET", "/boom", 500),
        ("GET", "/admin/invite/" + REDACTED, 200)]
    for line in access:
        assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0
        assert line["request_id"]
    assert "variables" not in captured.text and "InvitationTokenValue123" not in captured.text


async def test_graphql_operation_names(local: httpx.AsyncClient, captured: Captured) -> None:
    await local.get("/graphql", params={"query": "query Greeting { hello }", "operationName": "Greeting"})
    await local.get("/graphql", params={"extensions": json.dumps(
        {"persistedQuery": {"version": 1, "sha256Hash": "ab12cd34ef56" + "0" * 52}})})
    response = await local.post("/graphql", json={"query": "query FromBody { hello }"})
    assert response.json() == {"data": {"hello": "world"}}
    await local.post("/graphql", json={"query": "{ hello }"})
    ops = [a["graphql_operation"] for a in captured.access()]
    # the POST name comes from OperationNameExtension through scope["state"], the body is never re-read
    assert ops == ["Greeting", "persisted:ab12cd34ef56", "FromBody", "graphql"]


async def test_no_secret_reaches_the_log(local: httpx.AsyncClient, captured: Captured) -> None:
    response = await local.post("/leaky?password=" + PASSWORD, headers={
        "authorization": f"Bearer {BEARER}", "cookie": f"sq_session={COOKIE}; theme=dark",
        "x-api-key": SQS_KEY}, json={"password": PASSWORD})
    assert response.status_code == 200
    text = captured.text
    assert text.count("\n") >= 8
    for secret in SECRETS:
        assert secret not in text, secret
    assert REDACTED in text and "Traceback" in text
    for record in captured.records():  # still valid JSON everywhere
        assert record["level"]


def test_text_format_is_scrubbed_too(captured: Captured) -> None:
    import io
    stream = io.StringIO()
    configure_logging("DEBUG", json=False, stream=stream)
    logging.getLogger("x").debug("token=%s and %s", SQ_TOKEN, SQS_KEY, extra={"password": PASSWORD})
    out = stream.getvalue()
    assert out.strip() and "DEBUG" in out
    for secret in (SQ_TOKEN, SQS_KEY, PASSWORD):
        assert secret not in out


def test_redact_keeps_harmless_values() -> None:
    value = {"author": "bob", "max_tokens": 5, "area_id": "a1", "session_secret": "x" * 40,
             "nested": [{"api_key": "k"}, ("cookie", "c=1")]}
    assert redact(value) == {"author": "bob", "max_tokens": 5, "area_id": "a1", "session_secret": REDACTED,
                             "nested": [{"api_key": REDACTED}, ["cookie", REDACTED]]}


def test_unknown_level_falls_back_to_info(captured: Captured) -> None:
    import io
    stream = io.StringIO()
    configure_logging("LOUD", stream=stream)
    assert logging.getLogger().level == logging.INFO
    assert "LOG_LEVEL 'LOUD' is not a level name" in json.loads(stream.getvalue().splitlines()[0])["message"]
