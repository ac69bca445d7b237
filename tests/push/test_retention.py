"""Delivery records of old campaigns are purged; recent ones and every campaign's counters stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.domain.push.models import DELIVERIES
from server.domain.push.retention import purge_deliveries

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


async def test_records_of_campaigns_sent_before_the_retention_are_deleted(db: Any) -> None:
    for name, age_days in (("old", 31), ("edge", 29), ("new", 0)):
        await db.push_campaigns.insert_one({"_id": name, "send_at_ts": (NOW - timedelta(days=age_days)).timestamp(),
                                            "stats": {"delivered": 3}})
        await db[DELIVERIES].insert_many([{"_id": f"{name}:{i}", "campaign_id": name, "state": "delivered"}
                                          for i in range(3)])
    assert await purge_deliveries(db, 30, NOW) == 3
    left = sorted({d["campaign_id"] async for d in db[DELIVERIES].find({}, {"campaign_id": 1})})
    assert left == ["edge", "new"]
    assert await db.push_campaigns.count_documents({}) == 3  # the counters stay
    assert await purge_deliveries(db, 30, NOW) == 0
    marked = {d["_id"] async for d in db.push_campaigns.find({"deliveries_purged": True}, {"_id": 1})}
    assert marked == {"old"}  # read once, not every hour from now on
