"""The in-app inbox: every campaign that was not cancelled, newest first, for the reader's districts and topics.

Read state lives on the device; the server only pages through campaigns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain.i18n import LOCALES
from server.domain.inbox import repository
from server.domain.inbox.models import InboxItem, InboxPage
from server.domain.paging import Key
from server.domain.push.campaign import Campaign
from server.domain.push.models import TOPICS
from server.services.mongo import Doc

MAX_DISTRICTS: Final = 20
CHANNEL: Final = "push_inbox"  # Redis pub/sub: ids of campaigns that just started sending


async def inbox(db: AsyncDatabase[Doc], districts: list[str], topics: list[str], locale: str, *, first: int,
                now: datetime, after: Key | None = None) -> InboxPage:
    """Campaigns being sent or sent (not scheduled ones before their time, not those awaiting approval)."""
    districts = sorted(set(districts))[:MAX_DISTRICTS]
    wanted = sorted(set(topics) & set(TOPICS)) if topics else list(TOPICS)
    if not districts or not wanted or first <= 0:
        return InboxPage([], False)
    reader = locale if locale in LOCALES else "zh-CN"
    docs = await repository.sending_campaigns(db, districts, wanted, reader, now.timestamp(), first + 1, after)
    items = []
    for doc in docs[:first]:
        campaign = Campaign.from_doc(doc)
        title, body, url = campaign.localized(reader)
        items.append(InboxItem(campaign, title, body, url, (campaign.send_at_ts, campaign.id)))
    return InboxPage(items, len(docs) > first)


async def announce(redis: Redis, campaign_id: str) -> None:
    """Tell every web process a campaign is now in the inbox (its live inbox subscriptions filter it)."""
    await redis.publish(CHANNEL, campaign_id)
