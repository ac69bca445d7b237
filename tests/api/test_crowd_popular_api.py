"""popularTimes and calmerAlternatives through the API: shapes, localized summaries, ranges and errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from server.api.ids import to_global
from server.domain.crowd import feeder, sensors
from tests.conftest import RunningApp, gql
from tests.support import make_account

SHENZHEN = ZoneInfo("Asia/Shanghai")
POPULAR = """query($id: ID!, $date: Date!) { area(id: $id) { popularTimes(date: $date) {
  date dayKind summary summaryKind bestHours { start end label }
  hours { hour startsAt percent typicalPercent level isLive } } } }"""


def today() -> str:
    return datetime.now(SHENZHEN).date().isoformat()


async def post_readings(app_server: RunningApp, db: Any, shares: dict[str, float]) -> None:
    admin = await make_account(db, "admin")
    at = datetime.now(UTC).astimezone(SHENZHEN).isoformat()
    async with httpx.AsyncClient(base_url=app_server.url) as http:
        for area, share in shares.items():
            _, key = await sensors.register(db, admin.actor(), area, "people_counter", "popular-api")
            found = await db.areas.find_one({"_id": area})
            response = await http.post("/ingest/crowd", headers={"authorization": f"Bearer {key}"},
                                       json={"readings": [{"areaId": area, "at": at,
                                                           "count": round(found["capacity"] * share)}]})
            assert response.status_code == 200, response.text


async def test_popular_times_today_and_later_days(http: httpx.AsyncClient, db_client: Any,
                                                  app_server: RunningApp) -> None:
    db = db_client[app_server.db_name]
    await feeder.backfill(db, 14, datetime.now(UTC))
    await post_readings(app_server, db, {"pb-business-hub": 0.5})
    area = to_global("Area", "pb-business-hub")
    body = await gql(http, POPULAR, {"id": area, "date": today()})
    times = body["data"]["area"]["popularTimes"]
    assert [h["hour"] for h in times["hours"]] == list(range(24))
    live = [h for h in times["hours"] if h["isLive"]]
    assert len(live) == 1 and live[0]["hour"] == datetime.now(SHENZHEN).hour and live[0]["percent"] == 50.0
    assert all(h["typicalPercent"] >= 0 and h["level"] in ("QUIET", "MODERATE", "BUSY", "PACKED")
               for h in times["hours"])
    assert times["summaryKind"] in ("PEAK", "DIP", "EMPTYING", "QUIET", "STEADY")
    assert times["summary"] and times["dayKind"] in ("holiday", "festival", "weekend", "weekday")
    if times["bestHours"]:
        assert re.fullmatch(r"\d\d:00–\d\d:00", times["bestHours"]["label"])
        assert times["bestHours"]["start"] >= max(10, datetime.now(SHENZHEN).hour)

    later = (datetime.now(SHENZHEN).date() + timedelta(days=6)).isoformat()
    body = await gql(http, POPULAR, {"id": area, "date": later}, headers={"accept-language": "en"})
    times = body["data"]["area"]["popularTimes"]
    assert not any(h["isLive"] for h in times["hours"])
    assert times["bestHours"]["start"] >= 10 and times["bestHours"]["end"] <= 22
    assert re.fullmatch(r"Usually (busiest at \d\d:00 \(\d+%\)|quiet)", times["summary"])

    district = await gql(http, """query($id: ID!, $date: Date!) { district(id: $id) { popularTimes(date: $date) {
        summary hours { percent isLive } } } }""", {"id": to_global("District", "prince-bay"), "date": today()})
    hours = district["data"]["district"]["popularTimes"]["hours"]
    assert len(hours) == 24 and sum(h["isLive"] for h in hours) == 1


async def test_popular_times_outside_the_week_or_of_an_unknown_area_are_clear_errors(http: httpx.AsyncClient) -> None:
    area = to_global("Area", "pb-business-hub")
    for days in (-1, 7):
        date = (datetime.now(SHENZHEN).date() + timedelta(days=days)).isoformat()
        body = await gql(http, POPULAR, {"id": area, "date": date})
        assert body["errors"][0]["extensions"]["code"] == "DATE_OUT_OF_RANGE", body
        assert body["errors"][0]["extensions"]["field"] == "date"
    body = await gql(http, POPULAR, {"id": to_global("Area", "no-such-area"), "date": today()})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = await gql(http, POPULAR, {"id": area, "date": "tomorrow"})
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_calmer_alternatives_are_ranked_and_explained(http: httpx.AsyncClient, db_client: Any,
                                                            app_server: RunningApp) -> None:
    db = db_client[app_server.db_name]
    # 海上世界 packed; 太子路 (bars too, 5 min away) and the cruise terminal (gifts too) calmer;
    # the waterfront is calmest but sells nothing 海上世界 does
    await post_readings(app_server, db, {"pb-sea-world": 0.95, "pb-taizi-road": 0.2, "pb-cruise-terminal": 0.3,
                                         "pb-waterfront": 0.1})
    query = """query($id: ID!) { area(id: $id) { calmerAlternatives(first: 3) {
        walkingMeters walkingMinutes categories explanation area { slug crowd { level percent } } } } }"""
    body = await gql(http, query, {"id": to_global("Area", "pb-sea-world")})
    found = body["data"]["area"]["calmerAlternatives"]
    assert [a["area"]["slug"] for a in found] == ["pb-taizi-road", "pb-cruise-terminal"]
    first = found[0]
    assert 0 < first["walkingMeters"] < 600 and first["walkingMinutes"] <= 8 and first["categories"] == ["酒吧"]
    assert re.fullmatch(r"步行约 \d+ 分钟，现在人少（20%，这里 95%），也有酒吧", first["explanation"]), first
    english = await gql(http, query, {"id": to_global("Area", "pb-sea-world")}, headers={"accept-language": "en"})
    assert re.fullmatch(r"\d+ min walk; quiet now \(20% vs 95% here\); also \w+",
                        english["data"]["area"]["calmerAlternatives"][0]["explanation"])
    # a calm place has nothing calmer to offer
    body = await gql(http, query, {"id": to_global("Area", "pb-waterfront")})
    assert body["data"]["area"]["calmerAlternatives"] == []
    body = await gql(http, query.replace("first: 3", "first: 11"), {"id": to_global("Area", "pb-sea-world")})
    assert body["errors"][0]["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"
