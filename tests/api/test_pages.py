"""Home page, probes and the request id header."""

from __future__ import annotations

import httpx


async def test_home_is_the_pwa_shell(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert 'rel="manifest"' in response.text and "<html" in response.text


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert len(response.headers["x-request-id"]) >= 8
    echoed = await http.get("/healthz", headers={"x-request-id": "abc-12345678"})
    assert echoed.headers["x-request-id"] == "abc-12345678"
    refused = await http.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert refused.headers["x-request-id"] != "bad id with spaces"
