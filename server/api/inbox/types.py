"""The inbox item as GraphQL shows it, in the reader's locale."""

from __future__ import annotations

from datetime import datetime

import strawberry

from server.api.ids import to_global
from server.api.push.types import PushTopic
from server.domain.inbox.models import InboxItem


@strawberry.type(description="One inbox message in the reader's locale (zh-HK → zh-CN → en fallback).")
class InboxItemType:
    id: strawberry.ID
    title: str
    body: str
    url: str
    image: str | None
    topics: list[PushTopic]
    district_ids: list[strawberry.ID]
    created_at: datetime = strawberry.field(description="When it was sent.")

    @staticmethod
    def of(item: InboxItem, locale: str) -> InboxItemType:
        campaign = item.campaign
        return InboxItemType(
            id=strawberry.ID(to_global("Campaign", campaign.id)), title=item.title, body=item.body, url=item.url,
            image=campaign.image_for(locale) or None, topics=[PushTopic(t) for t in campaign.topics],
            district_ids=[strawberry.ID(to_global("District", d)) for d in campaign.district_ids],
            created_at=campaign.send_at)
