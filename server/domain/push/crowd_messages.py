"""Crowd alerts become automatic push campaigns to the district's `crowd_alerts` subscribers.

An alert's campaign reuses the alert's id, so a worker that dies after creating it and has its
stream entry reclaimed finds the campaign already there instead of sending a second one.  A Redis
key per area holds the cooldown: an area that flaps between BUSY and PACKED messages people at
most once per cooldown, whatever the rule's own hysteresis lets through.  No four-eyes approval:
the operator approved the rule, and a crowd message held for a colleague would arrive too late.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from server.domain.actor import Actor
from server.domain.crowd import repository as crowd_repository
from server.domain.i18n import LOCALES, Localized, pick
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service
from server.domain.push.campaign import Campaign, CampaignInput
from server.services.mongo import Doc

WORKER: Final = Actor(account_id="crowd-alerts", email="crowd-alerts", role="admin")
TTL: Final = 3600  # a crowd level older than an hour is news nobody needs
COOLDOWN_KEY: Final = "push:crowd-cooldown:"

_LEVEL: Final[dict[str, Localized]] = {
    "MODERATE": {"zh-CN": "人流渐多", "zh-HK": "人流漸多", "en": "getting busy"},
    "BUSY": {"zh-CN": "人流较多", "zh-HK": "人流較多", "en": "busy"},
    "PACKED": {"zh-CN": "非常拥挤", "zh-HK": "非常擁擠", "en": "packed"},
}


def _texts(area: Localized, district: Localized, level: str, percent: float) -> tuple[Localized, Localized]:
    words = _LEVEL.get(level, _LEVEL["BUSY"])
    pct = round(percent)
    title: Localized = {}
    body: Localized = {}
    for locale in LOCALES:
        a, d, w = pick(area, locale), pick(district, locale), words[locale]
        if locale == "en":
            title[locale] = f"{a} is {w} right now"
            body[locale] = (f"{a} ({d}) is at about {pct}% of its capacity. Come a little later, "
                            f"or start with a quieter area nearby.")
        elif locale == "zh-HK":
            title[locale] = f"{a}現在{w}"
            body[locale] = f"{d}{a}目前約為容量的 {pct}%。建議錯峰前往，或先逛逛附近較空的片區。"
        else:
            title[locale] = f"{a}现在{w}"
            body[locale] = f"{d}{a}目前约为容量的 {pct}%。建议错峰前往，或先逛逛附近较空的片区。"
    return title, body


async def campaign_for_alert(db: AsyncDatabase[Doc], redis: Redis, alert_id: str, *, now: datetime,
                             cooldown_minutes: int, district_url: str) -> tuple[Campaign | None, str]:
    """The campaign for a raised alert (created once), or None with why: cooldown, stale, not raised."""
    alert = await crowd_repository.alert_doc(db, alert_id)
    if alert is None or alert.get("kind") != "raised":
        return None, "not a raised alert"
    at = alert.get("at")
    if isinstance(at, datetime) and (now - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds() > TTL:
        await _handled(db, alert_id, {"by": "worker", "skipped": "stale"})  # reclaimed too late to be news
        return None, "stale"
    existing = await campaign_service.get(db, alert_id)
    if existing is not None:
        return existing, "created before"
    area_id, district_id = str(alert["area_id"]), str(alert["district_id"])
    # SET NX claims the area's cooldown; a value equal to this alert is our own earlier, interrupted try
    claimed = await redis.set(COOLDOWN_KEY + area_id, alert_id, nx=True, ex=cooldown_minutes * 60)
    if not claimed and await redis.get(COOLDOWN_KEY + area_id) != alert_id:
        await _handled(db, alert_id, {"by": "worker", "skipped": "cooldown"})
        return None, "cooldown"
    area, district = await crowd_repository.names_of_place(db, area_id, district_id)
    title, body = _texts(dict(area.get("name") or {"en": area_id}), dict(district.get("name") or {"en": district_id}),
                         str(alert.get("level")), float(alert.get("percent") or 0))
    data = CampaignInput(title=title, body=body, url=dict.fromkeys(LOCALES, district_url), district_ids=[district_id],
                         topics=["crowd_alerts"], ttl=TTL, collapse_topic=_topic(area_id))
    campaign: Campaign | None
    try:
        campaign = await campaign_service.create(db, WORKER, data, now=now, source=campaign_model.SOURCE_CROWD_ALERT,
                                          campaign_id=alert_id)
    except DuplicateKeyError:  # another worker got there between our read and insert
        campaign = await campaign_service.get(db, alert_id)
    await _handled(db, alert_id, {"by": "worker", "campaign_id": alert_id})
    return campaign, "created"


def _topic(area_id: str) -> str:
    """RFC 8030 Topic: a newer message for the area replaces one its phone has not fetched yet."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in area_id)
    return f"crowd-{safe}"[:32]


async def _handled(db: AsyncDatabase[Doc], alert_id: str, how: dict[str, Any]) -> None:
    await crowd_repository.mark_alert_handled(db, alert_id, how)
