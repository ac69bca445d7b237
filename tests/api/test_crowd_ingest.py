"""Sensors post readings; levels, provenance, history and alerts follow."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from server.api.ids import to_global
from server.domain.accounts import service as accounts
from server.domain.crowd import sensors
from tests.conftest import RunningApp, gql
from tests.ops.servers import eventually
from tests.support import make_account

AREA = "hqb-pedestrian-street"
OTHER_DISTRICT_AREA = "dongmen"


@pytest.fixture(scope="module")
async def crowd(db_client: Any, app_server: RunningApp) -> dict[str, Any]:
    db = db_client[app_server.db_name]
    operator = await make_account(db, "operator", district_ids=["huaqiangbei"])
    _, key = await sensors.register(db, operator.actor(), AREA, "people_counter", "north gate")
    token = await accounts.create_token(db, operator.actor(), "ops", ["districts"])
    area = await db.areas.find_one({"_id": AREA})
    return {"db": db, "key": key, "capacity": area["capacity"], "operator": operator,
            "ops": {"authorization": f"Bearer {token.secret}"}}


def at(minutes_ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


async def post(http: httpx.AsyncClient, key: str | None, body: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return await http.post("/ingest/crowd", json=body, headers=headers)


async def area_crowd(http: httpx.AsyncClient) -> dict[str, Any]:
    body = await gql(http, '{ area(id: "%s") { crowd { level percent occupancy capacity updatedAt source confidence '
                           'stale sensors } } }' % to_global("Area", AREA))
    crowd: dict[str, Any] = body["data"]["area"]["crowd"]
    return crowd


async def after_the_latest(http: httpx.AsyncClient, n: int) -> list[str]:
    """Times for n readings, a second apart, after the area's newest reading: the module's tests share the area
    and its sensor, and the newest reading sets the level, so a test that reads a level it posted posts after
    whatever the others (in whatever order they ran) posted.  At most seconds ahead: the ingest allows minutes."""
    start = datetime.now(UTC) - timedelta(seconds=30)
    shown = (await area_crowd(http))["updatedAt"]
    if shown:
        start = max(start, datetime.fromisoformat(shown) + timedelta(seconds=1))
    return [(start + timedelta(seconds=i)).isoformat() for i in range(n)]


async def test_a_key_is_required(http: httpx.AsyncClient) -> None:
    assert (await post(http, None, {"readings": []})).status_code == 401
    refused = await post(http, "sqs_not-a-real-key", {"readings": []})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"


async def test_malformed_and_oversized_batches(http: httpx.AsyncClient, crowd: dict[str, Any]) -> None:
    headers = {"authorization": f"Bearer {crowd['key']}"}
    bad_json = await http.post("/ingest/crowd", content=b"{not json", headers=headers)
    assert bad_json.status_code == 400 and "malformed JSON" in bad_json.json()["error"]
    too_many = await post(http, crowd["key"], {"readings": [{"areaId": AREA, "at": at(), "count": 1}] * 501})
    assert too_many.status_code == 413
    not_a_list = await post(http, crowd["key"], {"readings": "many"})
    assert not_a_list.status_code == 400


async def test_bad_readings_are_named_and_good_ones_stored(http: httpx.AsyncClient, crowd: dict[str, Any]) -> None:
    batch = {"readings": [
        {"areaId": AREA, "at": at(3), "count": 1200},
        {"areaId": "no-such-area", "at": at(), "count": 5},
        {"areaId": OTHER_DISTRICT_AREA, "at": at(), "count": 5},
        {"areaId": AREA, "at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "count": 5},
        {"areaId": AREA, "at": at(60 * 72), "count": 5},
        {"areaId": AREA, "at": at(2), "count": -3},
        {"areaId": AREA, "at": at(2), "count": 4, "entries": 2},
        {"areaId": AREA, "at": "yesterday", "count": 4},
        {"areaId": to_global("Area", AREA), "at": at(1), "count": 1300},
    ]}
    response = await post(http, crowd["key"], batch)
    assert response.status_code == 207
    body = response.json()
    assert body["stored"] == [0, 8]
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "areaId"), (2, "areaId"), (3, "at"), (4, "at"), (5, "count"), (6, "count"), (7, "at")]
    assert "another district" in body["rejected"][1]["message"]
    again = await post(http, crowd["key"], batch)
    assert again.json()["stored"] == [] and again.json()["duplicates"] == [0, 8]


async def test_level_with_provenance_and_resend_changes_nothing(http: httpx.AsyncClient,
                                                                crowd: dict[str, Any]) -> None:
    count = int(crowd["capacity"] * 0.75)
    [when] = await after_the_latest(http, 1)
    batch = {"readings": [{"areaId": AREA, "at": when, "count": count}]}
    assert (await post(http, crowd["key"], batch)).status_code == 200
    first = await area_crowd(http)
    assert first["level"] == "BUSY" and first["occupancy"] == count and first["source"] == "people_counter"
    assert first["stale"] is False and 0 < first["confidence"] <= 1 and first["sensors"] == 1
    readings_before = await crowd["db"].crowd_readings.count_documents({})
    hourly_before = [d async for d in crowd["db"].crowd_hourly.find({"area_id": AREA}).sort("_id", 1)]
    resent = await post(http, crowd["key"], batch)
    assert resent.json() == {"stored": [], "duplicates": [0], "rejected": []}
    assert await crowd["db"].crowd_readings.count_documents({}) == readings_before
    assert [d async for d in crowd["db"].crowd_hourly.find({"area_id": AREA}).sort("_id", 1)] == hourly_before
    assert await area_crowd(http) == first


async def test_district_level_is_weighted_by_capacity(http: httpx.AsyncClient, crowd: dict[str, Any]) -> None:
    await post(http, crowd["key"], {"readings": [{"areaId": AREA, "at": at(0.2), "count": crowd["capacity"]}]})
    body = await gql(http, '{ district(id: "%s") { crowd { percent capacity occupancy } areas { capacity '
                           'crowd { occupancy stale updatedAt } } } }' % to_global("District", "huaqiangbei"))
    district = body["data"]["district"]
    assert district["crowd"]["capacity"] == sum(a["capacity"] for a in district["areas"])
    fresh = [a for a in district["areas"] if a["crowd"]["updatedAt"] and not a["crowd"]["stale"]]
    occupancy = sum(a["crowd"]["occupancy"] for a in fresh)
    assert district["crowd"]["occupancy"] == occupancy
    assert district["crowd"]["percent"] == round(100 * occupancy / sum(a["capacity"] for a in fresh), 1)


async def test_history_by_hour(http: httpx.AsyncClient, crowd: dict[str, Any]) -> None:
    await post(http, crowd["key"], {"readings": [{"areaId": AREA, "at": at(1), "count": 10}]})  # an hour to show
    start = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    body = await gql(http, '{ crowdHistory(areaId: "%s", from: "%s") { start percent level } }'
                     % (to_global("Area", AREA), start))
    assert body["data"]["crowdHistory"]
    bad = await gql(http, '{ crowdHistory(areaId: "%s", from: "2020-01-01T00:00:00+00:00") { start } }'
                    % to_global("Area", AREA))
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_alert_rule_raises_once_clears_and_queues_for_the_worker(
        http: httpx.AsyncClient, crowd: dict[str, Any], app_server: RunningApp) -> None:
    area_id = to_global("Area", AREA)
    rule = await gql(http, 'mutation { setCrowdAlertRule(areaId: "%s", raiseAt: PACKED, clearBelow: BUSY, '
                           'cooldownMinutes: 0) { errors { code } } }' % area_id, headers=crowd["ops"])
    assert rule["data"]["setCrowdAlertRule"]["errors"] == []
    redis = aioredis.Redis.from_url(app_server.settings.redis_url, decode_responses=True)
    queued_before = await redis.xlen("crowd_alerts")
    packed = crowd["capacity"]
    times = await after_the_latest(http, 4)
    for when, count in zip(times, [packed, packed, packed // 10, packed], strict=True):
        await post(http, crowd["key"], {"readings": [{"areaId": AREA, "at": when, "count": count}]})
    body = await gql(http, '{ crowdAlerts(districtId: "%s") { kind level areaId } }'
                     % to_global("District", "huaqiangbei"), headers=crowd["ops"])
    kinds = [a["kind"] for a in body["data"]["crowdAlerts"]][:3]
    assert kinds == ["raised", "cleared", "raised"]  # newest first; the second packed reading raised nothing
    assert await redis.xlen("crowd_alerts") == queued_before + 2
    await redis.aclose()
    anonymous = await gql(http, '{ crowdAlerts(districtId: "%s") { kind } }' % to_global("District", "huaqiangbei"))
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_worker_takes_alerts_off_the_stream_and_acknowledges_them(
        crowd: dict[str, Any], app_server: RunningApp) -> None:
    import asyncio

    from server.worker import GROUP, consume_alerts

    redis = aioredis.Redis.from_url(app_server.settings.redis_url, decode_responses=True)
    # alerts the tests above raised for AREA would come first and start the area's message cooldown
    await redis.xtrim("crowd_alerts", maxlen=0)
    await redis.delete(f"push:crowd-cooldown:{AREA}")
    await redis.xadd("crowd_alerts", {"alert_id": "test-alert", "area_id": AREA, "district_id": "huaqiangbei",
                                      "level": "PACKED"})
    await crowd["db"].crowd_alerts.insert_one({"_id": "test-alert", "area_id": AREA, "district_id": "huaqiangbei",
                                               "level": "PACKED", "percent": 100.0, "at": datetime.now(UTC),
                                               "kind": "raised"})
    stop = asyncio.Event()
    task = asyncio.create_task(consume_alerts(crowd["db"], redis, app_server.settings, "test-worker", stop))
    for _ in range(100):
        handled = await crowd["db"].crowd_alerts.find_one({"_id": "test-alert"})
        if handled.get("handled"):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert handled["handled"] == {"by": "worker", "campaign_id": "test-alert"}  # see tests/push/test_crowd_messages
    await crowd["db"].crowd_alerts.delete_one({"_id": "test-alert"})
    await crowd["db"].push_campaigns.delete_one({"_id": "test-alert"})
    pending = await redis.xpending("crowd_alerts", GROUP)
    assert pending["pending"] == 0
    await redis.aclose()


async def test_a_burst_of_readings_becomes_few_messages_ending_with_the_newest(crowd: dict[str, Any],
                                                                               app_server: RunningApp) -> None:
    import asyncio

    from server.domain.crowd.live import DistrictUpdate, Publisher
    from server.domain.crowd.models import no_data

    redis = aioredis.Redis.from_url(app_server.settings.redis_url, decode_responses=True)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe("crowd:burst-test")
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        publisher = Publisher(redis, interval=0.2)
        now = datetime.now(UTC)
        for occupancy in range(1, 21):  # twenty updates in a few milliseconds
            crowd = dataclasses.replace(no_data(100), occupancy=occupancy, updated_at=now)
            await publisher.send(DistrictUpdate("burst-test", crowd, {}), now)
        await asyncio.sleep(0.5)
        received = []
        while (message := await pubsub.get_message(timeout=0.3)) is not None:
            received.append(json.loads(message["data"])["district"]["occupancy"])
    await redis.aclose()
    assert received == [1, 20]


async def test_a_sensor_that_hangs_up_before_its_body_is_read_stores_nothing_and_is_no_server_error(
        crowd: dict[str, Any], app_server: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    # What a server far behind sees: the sensor's client timed out and closed before the batch was read.
    caplog.set_level(logging.INFO, logger="shangquan.access")
    host, port = app_server.url.removeprefix("http://").split(":")
    body = json.dumps({"readings": [{"areaId": AREA, "at": at(), "count": 7}]}).encode()
    before = await crowd["db"].crowd_readings.count_documents({})
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /ingest/crowd HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {crowd['key']}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body) + 100}\r\n\r\n".encode() + body)
    await writer.drain()
    writer.close()  # the promised last 100 bytes never come

    async def logged() -> list[int]:
        return [r.__dict__["status"] for r in caplog.records
                if r.name == "shangquan.access" and r.__dict__.get("path") == "/ingest/crowd"]

    assert await eventually(logged) == [499]  # "client closed request", not 500
    assert await crowd["db"].crowd_readings.count_documents({}) == before
