"""The real application logs one JSON line per request and serves its metrics behind the token."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from server.asgi import create_app
from server.settings import Settings
from tests.conftest import unique_db
from tests.observability.conftest import METRICS_TOKEN, Captured, client_for
from tests.observability.test_metrics import AUTH, sample


async def test_real_app_logs_and_measures(mongo_url: str, redis_url: str, var_dir: Path,
                                          captured: Captured) -> None:
    settings = replace(Settings.from_env({}), mongodb_url=mongo_url, redis_url=redis_url,
                       mongodb_db=unique_db("obs"), var_dir=var_dir, metrics_token=METRICS_TOKEN)
    app = create_app(settings, load_content_on_start=False)  # access log, /metrics and Mongo metrics are wired in
    async with app.router.lifespan_context(app), client_for(app, host="10.0.0.5") as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/graphql", params={"query": "query Probe { __typename }",
                                                        "operationName": "Probe"})
        assert response.status_code == 200, response.text
        request_id = response.headers["x-request-id"]
        assert (await client.get("/metrics")).status_code == 401
        text = (await client.get("/metrics", headers=AUTH)).text
        await app.state.db.client.drop_database(settings.mongodb_db)
    probe = next(a for a in captured.access() if a["path"] == "/graphql")
    assert probe["graphql_operation"] == "Probe" and probe["status"] == 200 and probe["request_id"] == request_id
    assert sample(text, "shangquan_http_requests_total", method="GET", route="/graphql", status="2xx") >= 1
    assert sample(text, "shangquan_graphql_request_duration_seconds_count", operation="Probe") >= 1
    assert sample(text, "shangquan_mongodb_command_duration_seconds_count", command="createIndexes") >= 1
