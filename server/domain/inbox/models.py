"""An inbox item is a campaign in its reader's locale; which campaigns an inbox shows is decided here, once,
for the inbox's query and its live subscription alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.domain.i18n import LOCALES
from server.domain.push.campaign import SENDING, Campaign
from server.domain.push.models import TOPICS


@dataclass(frozen=True, slots=True)
class InboxItem:
    campaign: Campaign
    title: str
    body: str
    url: str
    key: tuple[float, str]  # (send_at_ts, campaign id): the inbox's keyset order, newest first


@dataclass(frozen=True, slots=True)
class InboxPage:
    items: list[InboxItem]
    has_next: bool


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
