"""The in-app inbox: every campaign that was not cancelled, newest first, for the reader's districts and topics.

Read state lives on the device; the server only pages through campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain.i18n import LOCALES
from server.domain.paging import Key
from server.domain.push.campaigns import COLLECTION, SENDING, Campaign
from server.domain.push.models import TOPICS
from server.services.mongo import Doc

MAX_DISTRICTS: Final = 20
CHANNEL: Final = "push_inbox"  # Redis pub/sub: ids of campaigns that just started sending


@dataclass(frozen=True, slots=True)
class InboxItem:
    campaign: Campaign
    title: str
    body: str
    url: str
    key: Key


@dataclass(frozen=True, slots=True)
class InboxPage:
    items: list[InboxItem]
    has_next: bool


def _before(after: Key | None) -> dict[str, Any]:
    """Strictly after `after` in (send_at_ts, _id) descending order."""
    if after is None:
        return {}
    value, last_id = after
    return {"$or": [{"send_at_ts": {"$lt": value}}, {"send_at_ts": value, "_id": {"$lt": last_id}}]}


async def inbox(db: AsyncDatabase[Doc], districts: list[str], topics: list[str], locale: str, *, first: int,
                now: datetime, after: Key | None = None) -> InboxPage:
    """Campaigns being sent or sent (not scheduled ones before their time, not those awaiting approval)."""
    districts = sorted(set(districts))[:MAX_DISTRICTS]
    wanted = sorted(set(topics) & set(TOPICS)) if topics else list(TOPICS)
    if not districts or not wanted or first <= 0:
        return InboxPage([], False)
    reader = locale if locale in LOCALES else "zh-CN"
    query: dict[str, Any] = {"district_ids": {"$in": districts}, "topics": {"$in": wanted}, "status": SENDING,
                             "locales": {"$in": [reader]}, "send_at_ts": {"$lte": now.timestamp()}}
    boundary = _before(after)
    if boundary:
        query = {"$and": [query, boundary]}
    cursor = db[COLLECTION].find(query).sort([("send_at_ts", DESCENDING), ("_id", DESCENDING)]).limit(first + 1)
    docs = [doc async for doc in cursor]
    items = []
    for doc in docs[:first]:
        campaign = Campaign.from_doc(doc)
        title, body, url = campaign.localized(reader)
        items.append(InboxItem(campaign, title, body, url, (campaign.send_at_ts, campaign.id)))
    return InboxPage(items, len(docs) > first)


async def announce(redis: Redis, campaign_id: str) -> None:
    """Tell every web process a campaign is now in the inbox (its live inbox subscriptions filter it)."""
    await redis.publish(CHANNEL, campaign_id)


def item_of(campaign: Campaign, locale: str) -> InboxItem:
    """A campaign as an inbox item for a reader of `locale` (as `inbox` lists it)."""
    title, body, url = campaign.localized(locale if locale in LOCALES else "zh-CN")
    return InboxItem(campaign, title, body, url, (campaign.send_at_ts, campaign.id))


def shows(campaign: Campaign, districts: list[str], topics: list[str], locale: str, *, now: datetime) -> bool:
    """Whether `inbox(districts, topics, locale)` would list the campaign now: the same rules as its query."""
    wanted = set(topics) & set(TOPICS) if topics else set(TOPICS)
    reader = locale if locale in LOCALES else "zh-CN"
    return (campaign.status == SENDING and campaign.send_at_ts <= now.timestamp()
            and not set(districts).isdisjoint(campaign.district_ids) and not wanted.isdisjoint(campaign.topics)
            and reader in campaign.locales)
