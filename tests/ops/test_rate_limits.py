"""Per-client limits against the real app and a Redis of its own: GraphQL by cost, plain routes by count.

The app reads the session's content database (already loaded); limits are set low and the window long
(an hour), and each test starts well inside a window, so no count is split by a window turning over.
Clients are told apart by X-Forwarded-For, which uvicorn honours from 127.0.0.1 only (FORWARDED_ALLOW_IPS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from graphql import parse, validate
from server.api.limits import limits_rule
from server.api.schema import build_schema
from server.domain.accounts import service as accounts
from server.domain.crowd import sensors
from server.plumbing.persisted import digest
from server.settings import ROOT, Settings
from tests.conftest import RunningApp
from tests.ops.servers import RedisServer, serve
from tests.support import make_account

WINDOW = 3600
BUDGET = 300
REQUESTS = 5
BATCHES = 3
QUERY = "{ districts { id name } }"
DISTRICTS = (ROOT / "graphql" / "operations" / "Districts.graphql").read_text(encoding="utf-8")


@dataclass
class Limited:
    url: str
    settings: Settings
    redis: aioredis.Redis


def rule_cost(document: str) -> int:
    """The cost the limits rule computes for a document, read from its QUERY_TOO_COSTLY error."""
    schema = build_schema(Settings())
    errors = validate(schema._schema, parse(document), [limits_rule(10, 30, 1)])
    cost: int = errors[0].extensions["cost"]  # type: ignore[index]
    return cost


def client() -> str:
    """A client address no other test (or earlier run) used: its own /64 of the documentation prefix."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::7"


def counter(bucket: str, who: str, window: int) -> str:
    """The Redis key of an IPv6 client's counter: its /64, as ipaddress writes it."""
    return f"rl:{bucket}:ip6:{ipaddress.ip_network(who + '/64', strict=False).network_address}:{window}"


async def fresh_window() -> int:
    """The current window's index, after waiting for the next one if this one is about to end."""
    left = WINDOW - time.time() % WINDOW
    if left < 5:
        await asyncio.sleep(left + 0.05)
    return int(time.time() // WINDOW)


@pytest.fixture(scope="module")
async def limited(own_redis: RedisServer, app_server: RunningApp, ops_dir: Path) -> AsyncIterator[Limited]:
    settings = replace(app_server.settings, redis_url=own_redis.url, var_dir=ops_dir,
                       rate_limit_window_seconds=WINDOW, rate_limit_graphql_cost=BUDGET,
                       rate_limit_requests=REQUESTS, rate_limit_ingest_batches=BATCHES)
    redis = aioredis.from_url(own_redis.url, decode_responses=True)
    async with serve(settings, load_content=False) as url:
        yield Limited(url, settings, redis)
    await redis.aclose()


async def ask(http: httpx.AsyncClient, who: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await http.post("/graphql", json={"query": QUERY}, headers={"x-forwarded-for": who, **(headers or {})})


async def test_graphql_cost_budget_answers_429_with_retry_after(limited: Limited) -> None:
    cost = rule_cost(QUERY)
    allowed = BUDGET // cost
    assert allowed >= 3, "the test needs a budget of a few requests"
    who, other = client(), client()
    window = await fresh_window()
    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as http:
        for _ in range(allowed):
            served = await ask(http, who)
            assert served.status_code == 200 and "errors" not in served.json()
        refused = await ask(http, who)
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= WINDOW
        body = refused.json()
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] == wait
        assert refused.headers["cache-control"] == "no-store"
        # the same /64 is the same client; another one still has its whole budget
        neighbour = who.replace("::7", "::8")
        assert (await ask(http, neighbour)).status_code == 429
        assert (await ask(http, other)).status_code == 200
    # charged exactly the cost the limits rule computes, refused requests included
    used = await limited.redis.get(counter("gql", who, window))
    assert int(used) == (allowed + 2) * cost


async def test_a_persisted_query_is_charged_the_cost_of_its_document(limited: Limited) -> None:
    who = client()
    window = await fresh_window()
    params = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest(DISTRICTS)}}),
              "variables": json.dumps({"locale": "en"})}
    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as http:
        response = await http.get("/graphql", params=params, headers={"x-forwarded-for": who})
    cost = rule_cost(DISTRICTS)
    if cost > BUDGET:
        assert response.status_code == 429
    else:
        assert response.status_code == 200
    assert int(await limited.redis.get(counter("gql", who, window))) == cost


async def test_an_api_token_is_one_client_wherever_it_comes_from(limited: Limited, db_client: Any,
                                                                app_server: RunningApp) -> None:
    db = db_client[app_server.db_name]
    operator = await make_account(db, "operator", district_ids=["huaqiangbei"])
    token = await accounts.create_token(db, operator.actor(), "ops test", ["districts"])
    bearer = {"authorization": f"Bearer {token.secret}"}
    first, second = client(), client()
    await fresh_window()
    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as http:
        for _ in range(BUDGET // rule_cost(QUERY)):
            assert (await ask(http, first, bearer)).status_code == 200
        assert (await ask(http, first, bearer)).status_code == 429
        assert (await ask(http, second, bearer)).status_code == 429, "the account's budget is spent"
        assert (await ask(http, second)).status_code == 200, "the address's own budget is not"
        # a made-up token proves no account: its requests count against the address
        fake = {"authorization": "Bearer sq_not-a-real-token"}
        assert (await ask(http, second, fake)).status_code == 200


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(limited: Limited) -> None:
    await fresh_window()
    # Another app process whose uvicorn trusts a proxy that is not us: the header is ignored, every
    # request counts against our own address, whatever it claims.
    async with serve(limited.settings, load_content=False, forwarded_allow_ips="192.0.2.1") as url, \
            httpx.AsyncClient(base_url=url, timeout=10) as http:
        answers = [(await ask(http, client())).status_code for _ in range(BUDGET // rule_cost(QUERY) + 1)]
    assert answers[:-1] == [200] * (len(answers) - 1) and answers[-1] == 429


async def test_plain_routes_are_counted_per_client_but_not_static_files_or_probes(limited: Limited) -> None:
    who, other = client(), client()
    await fresh_window()
    async with httpx.AsyncClient(base_url=limited.url, timeout=10, headers={"x-forwarded-for": who}) as http:
        for _ in range(REQUESTS):
            assert (await http.post("/push/clicked", json={"id": "no-such-campaign"})).status_code == 404
        refused = await http.post("/push/clicked", json={"id": "no-such-campaign"})
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= WINDOW
        assert refused.json()["code"] == "RATE_LIMITED"
        assert (await http.get("/admin/login")).status_code == 429, "one count for every limited route"
        for _ in range(REQUESTS + 1):
            assert (await http.get("/app/operations.js")).status_code == 200
            assert (await http.get("/healthz")).status_code == 200
        elsewhere = await http.get("/admin/login", headers={"x-forwarded-for": other})
        assert elsewhere.status_code == 200


async def test_sensor_batches_are_counted_per_sensor(limited: Limited, db_client: Any,
                                                     app_server: RunningApp) -> None:
    db = db_client[app_server.db_name]
    operator = await make_account(db, "operator", district_ids=["shajing-old-market"])
    _, busy = await sensors.register(db, operator.actor(), "shajing-longjin", "people_counter", "busy")
    _, calm = await sensors.register(db, operator.actor(), "shajing-longjin", "people_counter", "calm")
    await fresh_window()

    async def post(http: httpx.AsyncClient, key: str) -> httpx.Response:
        reading = {"areaId": "shajing-longjin", "at": datetime.now(UTC).isoformat(), "count": 100}
        return await http.post("/ingest/crowd", json={"readings": [reading]},
                               headers={"authorization": f"Bearer {key}"})

    async with httpx.AsyncClient(base_url=limited.url, timeout=10) as http:
        for _ in range(BATCHES):
            assert (await post(http, busy)).status_code == 200
        refused = await post(http, busy)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= WINDOW
        assert str(BATCHES) in refused.json()["error"]
        assert (await post(http, calm)).status_code == 200
