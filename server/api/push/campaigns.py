"""Campaigns and the inbox in GraphQL: createCampaign / cancelCampaign, campaignStats, inbox."""

from __future__ import annotations

import contextlib
from datetime import datetime
from enum import Enum

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of, to_global
from server.api.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from server.api.payloads import FieldError, LocalizedInput, actor, attempt, texts
from server.api.push.types import PushTopic
from server.domain.push import campaigns, inbox
from server.domain.push.campaigns import Campaign

MAX_INPUT_LIST = 60  # one past every domain limit, so the service can say "too many" without a huge list


@strawberry.enum(description="RFC 8030 Urgency: how soon a phone on battery should be woken.")
class PushUrgency(Enum):
    VERY_LOW = "very-low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@strawberry.enum
class CampaignStatus(Enum):
    AWAITING_APPROVAL = "awaiting_approval"
    SENDING = "sending"
    CANCELLED = "cancelled"


@strawberry.input(description="A push campaign, sent now to the subscribers of the target districts.")
class CampaignInput:
    title: LocalizedInput
    body: LocalizedInput
    url: LocalizedInput | None = strawberry.field(default=None, description="An app path starting with /.")
    district_ids: list[strawberry.ID]
    topics: list[PushTopic]
    locales: list[str] | None = strawberry.field(default=None, description="zh-CN, zh-HK, en; none means all.")
    ttl_seconds: int = strawberry.field(default=24 * 3600, description="1 minute to 4 weeks; clipped to the end "
                                                                       "of the linked festival.")
    urgency: PushUrgency = PushUrgency.NORMAL
    collapse_topic: str | None = strawberry.field(default=None, description="RFC 8030 Topic: a newer message "
                                                                            "with the same topic replaces one "
                                                                            "still waiting.")
    festival_id: strawberry.ID | None = None

    def to_service(self) -> campaigns.CampaignInput:
        return campaigns.CampaignInput(
            title=texts(self.title), body=texts(self.body), url=texts(self.url),
            district_ids=[key_of(d, "District") for d in self.district_ids[:MAX_INPUT_LIST]],
            topics=[t.value for t in self.topics], locales=[str(loc)[:20] for loc in (self.locales or [])[:10]],
            ttl=self.ttl_seconds, urgency=self.urgency.value, collapse_topic=self.collapse_topic,
            festival_id=key_of(self.festival_id, "Festival") if self.festival_id else None)


@strawberry.type(description="Progress of a campaign: counts of subscriptions (rateLimited and retried count "
                             "attempts that were put off, not subscriptions).")
class CampaignStatsType:
    targeted: int
    sent: int = strawberry.field(description="Messages handed to a push service (each subscriber at most once).")
    delivered: int
    expired: int
    failed: int
    too_large: int
    blocked: int
    rate_limited: int
    retried: int
    cancelled: int
    timed_out: int
    skipped: int
    deferred: int = strawberry.field(description="Held back by quiet hours (sent at their end, or timed out).")
    capped: int = strawberry.field(description="Subscribers skipped for the per-day message cap.")
    clicked: int = strawberry.field(description="Notifications opened, as reported by the service worker.")


@strawberry.type(name="Campaign")
class CampaignType:
    id: strawberry.ID
    status: CampaignStatus
    title: str
    body: str
    url: str
    locale: str = strawberry.field(description="The locale the texts above are in.")
    district_ids: list[strawberry.ID]
    topics: list[PushTopic]
    ttl_seconds: int
    urgency: PushUrgency
    created_at: datetime
    stats: CampaignStatsType

    @staticmethod
    def of(campaign: Campaign, locale: str) -> CampaignType:
        title, body, url = campaign.localized(locale)
        return CampaignType(
            id=strawberry.ID(to_global("Campaign", campaign.id)), status=CampaignStatus(campaign.status),
            title=title, body=body, url=url, locale=locale,
            district_ids=[strawberry.ID(to_global("District", d)) for d in campaign.district_ids],
            topics=[PushTopic(t) for t in campaign.topics], ttl_seconds=campaign.ttl,
            urgency=PushUrgency(campaign.urgency.value), created_at=campaign.created_at,
            stats=CampaignStatsType(**{name: campaign.stats.get(name, 0) for name in campaigns.STATS}))


@strawberry.type(description="One inbox message in the reader's locale (zh-HK → zh-CN → en fallback).")
class InboxItemType:
    id: strawberry.ID
    title: str
    body: str
    url: str
    topics: list[PushTopic]
    district_ids: list[strawberry.ID]
    created_at: datetime


@strawberry.type
class InboxEdge:
    cursor: str
    node: InboxItemType


@strawberry.type
class InboxConnection:
    edges: list[InboxEdge]
    page_info: PageInfo
    locale: str


@strawberry.type
class CampaignPayload:
    campaign: CampaignType | None
    errors: list[FieldError]


@strawberry.type
class CampaignQueries:
    @strawberry.field(description="Campaign messages for these districts and topics, newest first.")
    async def inbox(self, info: AppInfo, districts: list[strawberry.ID], topics: list[PushTopic] | None = None,
                    locale: str | None = None, first: int | None = None,
                    after: str | None = None) -> InboxConnection:
        ctx = info.context
        ctx.use_locale(locale)
        size = page_size(first)
        page = await inbox.inbox(ctx.db, [key_of(d, "District") for d in districts[:inbox.MAX_DISTRICTS]],
                                 [t.value for t in topics or []], ctx.locale, first=size, now=ctx.now,
                                 after=decode_cursor(after))
        edges = [InboxEdge(cursor=encode_cursor(item.key), node=InboxItemType(
            id=strawberry.ID(to_global("Campaign", item.campaign.id)), title=item.title, body=item.body,
            url=item.url, topics=[PushTopic(t) for t in item.campaign.topics],
            district_ids=[strawberry.ID(to_global("District", d)) for d in item.campaign.district_ids],
            created_at=item.campaign.send_at)) for item in page.items]
        return InboxConnection(edges=edges, page_info=PageInfo(has_next_page=page.has_next,
                                                               end_cursor=edges[-1].cursor if edges else None),
                               locale=ctx.locale)

    @strawberry.field(description="A campaign with its progress; for operators of its districts.")
    async def campaign_stats(self, info: AppInfo, id: strawberry.ID) -> CampaignPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(info, campaigns.for_operator(ctx.db, who, key_of(id, "Campaign")))
        return CampaignPayload(campaign=CampaignType.of(result, ctx.locale) if result else None, errors=errors)


@strawberry.type
class CampaignMutations:
    @strawberry.mutation(description="Compose a campaign and send it now to the target districts' subscribers.")
    async def create_campaign(self, info: AppInfo, input: CampaignInput) -> CampaignPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(info, campaigns.create(ctx.db, who, input.to_service(), now=ctx.now))
        if result is not None:
            from redis.exceptions import RedisError

            from server.push import fanout

            # The worker expands new campaigns within seconds anyway; doing it here starts the send at once.
            with contextlib.suppress(RedisError):
                await fanout.enqueue(ctx.db, ctx.redis, result.id, consumer="web")
            result = await campaigns.get(ctx.db, result.id) or result
        return CampaignPayload(campaign=CampaignType.of(result, ctx.locale) if result else None, errors=errors)

    @strawberry.mutation(description="Stop sending what is not yet sent; the campaign leaves the inbox.")
    async def cancel_campaign(self, info: AppInfo, id: strawberry.ID) -> CampaignPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(info, campaigns.cancel(ctx.db, who, key_of(id, "Campaign")))
        return CampaignPayload(campaign=CampaignType.of(result, ctx.locale) if result else None, errors=errors)

