"""Forecasts through the API, on history the simulator wrote; the simulate command as an operator runs it."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.api.ids import to_global
from server.content.loader import load_content
from server.domain.crowd import feeder
from server.services import mongo
from server.settings import ROOT
from tests.conftest import RunningApp, gql, unique_db


async def test_forecast_has_twelve_hours_with_confidence(http: httpx.AsyncClient, db_client: Any,
                                                         app_server: RunningApp) -> None:
    db = db_client[app_server.db_name]
    await feeder.backfill(db, 14, datetime.now(UTC))
    body = await gql(http, '{ crowdForecast(areaId: "%s") { hour percent level confidence } }'
                     % to_global("Area", "guomao"))
    points = body["data"]["crowdForecast"]
    assert len(points) == 12
    hours = [datetime.fromisoformat(p["hour"]) for p in points]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hours))
    assert hours[0] > datetime.now(UTC)
    assert all(0 < p["confidence"] <= 1 and p["percent"] >= 0 for p in points)
    assert points[0]["confidence"] >= points[-1]["confidence"]
    day = await gql(http, '{ crowdHistory(areaId: "%s", from: "%s", bucket: DAY) { start percent } }'
                    % (to_global("Area", "guomao"), (datetime.now(UTC) - timedelta(days=10)).isoformat()))
    assert len(day["data"]["crowdHistory"]) >= 7


async def test_simulate_command_backfills_and_feeds_every_area_but_the_dropped_one(
        mongo_url: str, app_server: RunningApp, db_client: Any) -> None:
    name = unique_db("simulate")
    db = db_client[name]
    await mongo.ensure_indexes(db)
    await load_content(db, ROOT / "content")
    env = {**os.environ, "MONGODB_URL": mongo_url, "REDIS_URL": app_server.settings.redis_url, "MONGODB_DB": name}
    done = subprocess.run([sys.executable, "-m", "server", "crowd", "simulate", "--backfill-days", "3", "--once"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    areas = await db.areas.count_documents({})
    assert await db.crowd_hourly.count_documents({}) > areas * 20
    fed = await db.crowd_state.count_documents({})
    assert areas - 1 <= fed <= areas  # one counter drops out for a few hours a day
    refused = subprocess.run([sys.executable, "-m", "server", "crowd", "simulate"], cwd=ROOT,
                             env={k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL"}},
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and "MONGODB_URL" in refused.stderr
