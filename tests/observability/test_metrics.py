"""/metrics: who may read it, and what it says (route templates, GraphQL errors, MongoDB latency)."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import AsyncMongoClient

from server.observability import metrics
from server.observability.metrics import MongoMetrics, count_graphql_errors, count_readings
from tests.observability.conftest import METRICS_TOKEN, build_app, client_for

AUTH = {"authorization": f"Bearer {METRICS_TOKEN}"}


async def test_token_required_when_set() -> None:
    async with client_for(build_app(), host="127.0.0.1") as client:
        assert (await client.get("/metrics")).status_code == 401  # even from loopback
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get("/metrics", headers={"authorization": METRICS_TOKEN})).status_code == 401
    async with client_for(build_app(), host="10.0.0.5") as client:
        response = await client.get("/metrics", headers=AUTH)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")


async def test_without_token_only_loopback() -> None:
    async with client_for(build_app(token=""), host="10.0.0.5") as client:
        assert (await client.get("/metrics")).status_code == 403
        assert (await client.get("/metrics", headers=AUTH)).status_code == 403
    for host in ("127.0.0.1", "::1"):
        async with client_for(build_app(token=""), host=host) as client:
            assert (await client.get("/metrics")).status_code == 200


def sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


async def test_request_counter_by_route_template() -> None:
    async with client_for(build_app(), host="10.0.0.5") as client:
        before = sample((await client.get("/metrics", headers=AUTH)).text, "shangquan_http_requests_total",
                        method="GET", route="/shops/{shop_id}", status="2xx")
        for shop in ("a", "b", "c"):
            assert (await client.get(f"/shops/{shop}")).status_code == 200
        await client.get("/admin/invite/SomeInvitation123")
        await client.get("/no/such/page")
        text = (await client.get("/metrics", headers=AUTH)).text
    assert sample(text, "shangquan_http_requests_total", method="GET", route="/shops/{shop_id}",
                  status="2xx") == before + 3
    assert sample(text, "shangquan_http_requests_total", method="GET", route="/admin/invite/{token}",
                  status="2xx") >= 1
    assert sample(text, "shangquan_http_requests_total", method="GET", route="unmatched", status="4xx") >= 1
    assert "/shops/a" not in text and "SomeInvitation123" not in text
    assert sample(text, "shangquan_http_request_duration_seconds_count", method="GET",
                  route="/shops/{shop_id}") >= 3


async def test_graphql_errors_readings_and_operations() -> None:
    count_graphql_errors(["NOT_FOUND", "NOT_FOUND", "RATE_LIMITED", "weird code {}"])
    count_readings(7)
    async with client_for(build_app(), host="10.0.0.5") as client:
        await client.post("/graphql", json={"query": "query Metered { hello }"})
        text = (await client.get("/metrics", headers=AUTH)).text
    assert sample(text, "shangquan_graphql_errors_total", code="NOT_FOUND") >= 2
    assert sample(text, "shangquan_graphql_errors_total", code="OTHER") >= 1
    assert sample(text, "shangquan_crowd_readings_ingested_total") >= 7
    assert sample(text, "shangquan_graphql_request_duration_seconds_count", operation="Metered") >= 1


def test_operation_labels_are_bounded() -> None:
    assert metrics.operation_label("Fine_Name1") == "Fine_Name1"
    assert metrics.operation_label("no spaces allowed") == "other"
    assert metrics.operation_label(None) == "anonymous"


async def test_mongo_command_latency(mongo_url: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, event_listeners=[MongoMetrics()])
    try:
        collection = client[f"obs_{uuid.uuid4().hex[:8]}"]["things"]
        await collection.insert_one({"x": 1})
        assert await collection.find_one({"x": 1}) is not None
        await collection.database.client.drop_database(collection.database.name)
    finally:
        await client.close()
    async with client_for(build_app(), host="10.0.0.5") as http:
        text = (await http.get("/metrics", headers=AUTH)).text
    assert sample(text, "shangquan_mongodb_command_duration_seconds_count", command="find") >= 1
    assert sample(text, "shangquan_mongodb_command_duration_seconds_count", command="insert") >= 1
    assert 'shangquan_mongodb_command_duration_seconds_bucket{command="find",le="0.005"}' in text


async def test_websocket_gauge_helpers() -> None:
    start = metrics.WS_SUBSCRIBERS._value.get()
    metrics.subscriber_connected()
    metrics.subscriber_connected()
    metrics.subscriber_disconnected()
    assert metrics.WS_SUBSCRIBERS._value.get() == start + 1
    metrics.subscriber_disconnected()


async def test_websocket_connections_move_the_gauge() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import WebSocketRoute
    from starlette.types import Message
    from starlette.websockets import WebSocket

    from server.observability.middleware import AccessLogMiddleware

    seen: list[float] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        seen.append(metrics.WS_SUBSCRIBERS._value.get())
        await websocket.close(code=1001)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], middleware=[Middleware(AccessLogMiddleware)])
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    start = metrics.WS_SUBSCRIBERS._value.get()
    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "root_path": "", "query_string": b"",
             "headers": [], "scheme": "ws", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
             "subprotocols": [], "asgi": {"version": "3.0"}}
    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert seen == [start + 1]
    assert metrics.WS_SUBSCRIBERS._value.get() == start
