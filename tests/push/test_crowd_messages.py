"""Crowd alerts become automatic campaigns: once per alert, with a per-area cooldown, in every locale."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from server.api.ids import to_global
from server.domain.crowd.alerts import STREAM
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service, crowd_messages
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.settings import Settings
from server.worker import GROUP, consume_alerts, handle_alert


async def seed(db: Any) -> str:
    area = f"hqb-seg-{uuid.uuid4().hex[:6]}"
    await db.districts.replace_one({"_id": "huaqiangbei"}, {"_id": "huaqiangbei", "name": {
        "zh-CN": "华强北", "zh-HK": "華強北", "en": "Huaqiangbei"}}, upsert=True)
    await db.areas.insert_one({"_id": area, "district_id": "huaqiangbei",
                               "name": {"zh-CN": "赛格片区", "zh-HK": "賽格片區", "en": "SEG Square Quarter"}})
    return area


async def raise_alert(db: Any, area: str, level: str = "PACKED", kind: str = "raised") -> dict[str, str]:
    alert_id = uuid.uuid4().hex
    await db.crowd_alerts.insert_one({"_id": alert_id, "area_id": area, "district_id": "huaqiangbei",
                                      "level": level, "percent": 93.4, "at": datetime.now(UTC), "kind": kind})
    return {"alert_id": alert_id, "area_id": area, "district_id": "huaqiangbei", "level": level}


async def test_a_raised_alert_becomes_one_campaign_to_crowd_alert_subscribers(db: Any, redis: Redis) -> None:
    area = await seed(db)
    fields = await raise_alert(db, area)
    await handle_alert(db, redis, Settings(), fields)
    campaign = await campaign_service.get(db, fields["alert_id"])
    assert campaign is not None
    assert campaign.source == campaign_model.SOURCE_CROWD_ALERT and campaign.status == campaign_model.SENDING
    assert campaign.district_ids == ("huaqiangbei",) and campaign.topics == ("crowd_alerts",)
    assert campaign.ttl == 3600 and campaign.collapse_topic == f"crowd-{area}"[:32]
    assert campaign.localized("zh-CN") == (
        "赛格片区现在非常拥挤", "华强北赛格片区目前约为容量的 93%。建议错峰前往，或先逛逛附近较空的片区。",
        f"/d/{to_global('District', 'huaqiangbei')}")
    assert campaign.localized("zh-HK")[0] == "賽格片區現在非常擁擠"
    assert campaign.localized("en")[0] == "SEG Square Quarter is packed right now"
    assert (await db.crowd_alerts.find_one({"_id": fields["alert_id"]}))["handled"] == {
        "by": "worker", "campaign_id": fields["alert_id"]}

    # a reclaimed stream entry (the worker died before acknowledging) finds the campaign, not a second one
    await handle_alert(db, redis, Settings(), fields)
    assert await db[campaign_model.COLLECTION].count_documents({}) == 1

    # its audience: subscriptions of the district that chose crowd alerts
    now = datetime.now(UTC)
    for i, topics in enumerate((["crowd_alerts"], ["festivals"], ["crowd_alerts", "offers"])):
        await db[SUBSCRIPTIONS].insert_one({"_id": f"s{i}", "endpoint": f"https://push.example/{i}",
                                            "keys": {"p256dh": "x", "auth": "y"}, "origin": "https://push.example",
                                            "districts": ["huaqiangbei"], "topics": topics, "locale": "en",
                                            "created_at": now, "updated_at": now})
    assert await campaign_service.estimate(db, campaign.district_ids, campaign.topics, campaign.locales) == 2


async def test_the_cooldown_keeps_a_flapping_area_to_one_message(db: Any, redis: Redis) -> None:
    area = await seed(db)
    first = await raise_alert(db, area, "BUSY")
    second = await raise_alert(db, area, "PACKED")
    await handle_alert(db, redis, Settings(), first)
    await handle_alert(db, redis, Settings(), second)
    assert await campaign_service.get(db, first["alert_id"]) is not None
    assert await campaign_service.get(db, second["alert_id"]) is None
    assert (await db.crowd_alerts.find_one({"_id": second["alert_id"]}))["handled"] == {
        "by": "worker", "skipped": "cooldown"}
    # once the cooldown is over the next alert is sent again
    await redis.delete(crowd_messages.COOLDOWN_KEY + area)
    third = await raise_alert(db, area, "PACKED")
    await handle_alert(db, redis, Settings(), third)
    assert (await campaign_service.get(db, third["alert_id"])) is not None
    assert 0 < await redis.ttl(crowd_messages.COOLDOWN_KEY + area) <= 30 * 60


async def test_cleared_and_unknown_alerts_send_nothing(db: Any, redis: Redis) -> None:
    area = await seed(db)
    cleared = await raise_alert(db, area, "MODERATE", kind="cleared")
    await handle_alert(db, redis, Settings(), cleared)
    await handle_alert(db, redis, Settings(), {"alert_id": "nope", "district_id": "huaqiangbei"})
    assert await db[campaign_model.COLLECTION].count_documents({}) == 0


async def test_the_worker_turns_stream_entries_into_campaigns(db: Any, redis: Redis) -> None:
    area = await seed(db)
    fields = await raise_alert(db, area)
    entry_id = await redis.xadd(STREAM, fields)
    before = await redis.hget(f"sq:pc:{Settings().mongodb_db}:tags", "inbox")
    stop = asyncio.Event()
    task = asyncio.create_task(consume_alerts(db, redis, Settings(), f"test-{uuid.uuid4().hex[:6]}", stop))
    try:
        for _ in range(100):
            if await campaign_service.get(db, fields["alert_id"]) is not None:
                break
            await asyncio.sleep(0.05)
        assert await campaign_service.get(db, fields["alert_id"]) is not None
        # its campaign is in the inbox: the loop outdated the web processes' cached inbox answers
        assert await redis.hget(f"sq:pc:{Settings().mongodb_db}:tags", "inbox") != before
    finally:
        stop.set()
        await task
    pending: Any = await redis.xpending_range(STREAM, GROUP, min="-", max="+", count=1000)
    assert entry_id not in {p["message_id"] for p in pending}  # handled, so acknowledged


async def test_an_alert_reclaimed_hours_late_is_no_longer_news(db: Any, redis: Redis) -> None:
    area = await seed(db)
    fields = await raise_alert(db, area)
    late = datetime.now(UTC) + timedelta(hours=2)
    assert await crowd_messages.campaign_for_alert(db, redis, fields["alert_id"], now=late, cooldown_minutes=30,
                                                   district_url="/d/x") == (None, "stale")
    assert (await db.crowd_alerts.find_one({"_id": fields["alert_id"]}))["handled"] == {
        "by": "worker", "skipped": "stale"}
    assert await redis.get(crowd_messages.COOLDOWN_KEY + area) is None  # a stale alert takes no cooldown
