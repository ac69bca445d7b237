"""GraphQL types of campaigns: inputs, the campaign as an operator sees it, previews."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from server.api.ids import key_of, to_global
from server.api.payloads import FieldError, LocalizedInput, texts
from server.api.push.types import PushTopic
from server.domain.actor import Actor
from server.domain.push import campaign as campaign_model
from server.domain.push.campaign import Campaign, Preview

MAX_INPUT_LIST = 60  # one past every domain limit, so the service can say "too many" without a huge list


@strawberry.enum(description="RFC 8030 Urgency: how soon a phone on battery should be woken.")
class PushUrgency(Enum):
    VERY_LOW = "very-low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@strawberry.enum(description="Where a campaign is, for display: derived from its stored state and the clock.")
class CampaignStatus(Enum):
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"


@strawberry.enum(description="Who composed a campaign.")
class CampaignSource(Enum):
    OPERATOR = campaign_model.SOURCE_OPERATOR
    CROWD_ALERT = campaign_model.SOURCE_CROWD_ALERT


def status_of(campaign: Campaign, now_ts: float) -> CampaignStatus:
    return CampaignStatus(campaign.state(now_ts))


DONE = frozenset({CampaignStatus.SENT, CampaignStatus.CANCELLED})


@strawberry.input(description="A push campaign for the subscribers of the target districts.")
class CampaignInput:
    title: LocalizedInput
    body: LocalizedInput
    url: LocalizedInput | None = strawberry.field(default=None, description="An app path starting with /.")
    image: LocalizedInput | None = strawberry.field(
        default=None, description="Shown large in the notification: an https URL or an app path starting with /.")
    district_ids: list[strawberry.ID]
    topics: list[PushTopic]
    locales: list[str] | None = strawberry.field(default=None, description="zh-CN, zh-HK, en; none means all.")
    ttl_seconds: int = strawberry.field(default=24 * 3600, description="1 minute to 4 weeks, counted from the send "
                                                                       "time; clipped to the end of the linked "
                                                                       "festival.")
    urgency: PushUrgency = PushUrgency.NORMAL
    collapse_topic: str | None = strawberry.field(default=None, description="RFC 8030 Topic: a newer message "
                                                                            "with the same topic replaces one "
                                                                            "still waiting.")
    festival_id: strawberry.ID | None = None
    send_at: datetime | None = strawberry.field(
        default=None, description="When to send (with a UTC offset; up to 4 weeks ahead); null sends now, or as "
                                  "soon as it is approved.")

    def to_service(self) -> campaign_model.CampaignInput:
        return campaign_model.CampaignInput(
            title=texts(self.title), body=texts(self.body), url=texts(self.url), image=texts(self.image),
            district_ids=[key_of(d, "District") for d in self.district_ids[:MAX_INPUT_LIST]],
            topics=[t.value for t in self.topics], locales=[str(loc)[:20] for loc in (self.locales or [])[:10]],
            ttl=self.ttl_seconds, urgency=self.urgency.value, collapse_topic=self.collapse_topic,
            festival_id=key_of(self.festival_id, "Festival") if self.festival_id else None, send_at=self.send_at)


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
    image: str | None = strawberry.field(description="The notification's image in this locale, if any.")
    locale: str = strawberry.field(description="The locale the texts above are in.")
    district_ids: list[strawberry.ID]
    topics: list[PushTopic]
    ttl_seconds: int
    urgency: PushUrgency
    created_at: datetime
    send_at: datetime = strawberry.field(description="When it is (or was) sent; set to the approval time when that "
                                                     "came later.")
    source: CampaignSource
    approved: bool = strawberry.field(description="A second operator released it (four-eyes approval).")
    can_approve: bool = strawberry.field(description="It awaits approval and the viewer did not compose it.")
    stats: CampaignStatsType

    @staticmethod
    def of(campaign: Campaign, locale: str, now: datetime, viewer: Actor | None = None) -> CampaignType:
        title, body, url = campaign.localized(locale)
        awaiting = campaign.status == campaign_model.AWAITING_APPROVAL
        return CampaignType(
            id=strawberry.ID(to_global("Campaign", campaign.id)), status=status_of(campaign, now.timestamp()),
            title=title, body=body, url=url, image=campaign.image_for(locale) or None, locale=locale,
            district_ids=[strawberry.ID(to_global("District", d)) for d in campaign.district_ids],
            topics=[PushTopic(t) for t in campaign.topics], ttl_seconds=campaign.ttl,
            urgency=PushUrgency(campaign.urgency.value), created_at=campaign.created_at, send_at=campaign.send_at,
            source=CampaignSource(campaign.source) if campaign.source in {s.value for s in CampaignSource}
            else CampaignSource.OPERATOR,
            approved=campaign.approved_by is not None,
            can_approve=awaiting and viewer is not None and viewer.account_id is not None
            and viewer.account_id != campaign.created_by,
            stats=CampaignStatsType(**{name: campaign.stats.get(name, 0) for name in campaign_model.STATS}))


@strawberry.type
class CampaignPayload:
    campaign: CampaignType | None
    errors: list[FieldError]


@strawberry.type
class CampaignListPayload:
    campaigns: list[CampaignType]
    errors: list[FieldError]


@strawberry.type(description="What the subscribers reading one locale would get (texts after the zh-HK → zh-CN → "
                             "en fallback), and whether it fits one push message.")
class CampaignPreview:
    locale: str
    title: str
    body: str
    url: str
    image: str | None
    payload_bytes: int = strawberry.field(description="The message's size before encryption.")
    fits: bool = strawberry.field(description="False: too large for one push message; shorten the texts.")

    @staticmethod
    def of(preview: Preview) -> CampaignPreview:
        return CampaignPreview(locale=preview.locale, title=preview.title, body=preview.body, url=preview.url,
                               image=preview.image or None, payload_bytes=preview.payload_bytes, fits=preview.fits)


@strawberry.type
class CampaignPreviewPayload:
    previews: list[CampaignPreview]
    audience: int | None = strawberry.field(description="Subscriptions it would reach now, before quiet hours and "
                                                        "the daily cap; null when the input has errors.")
    errors: list[FieldError]
