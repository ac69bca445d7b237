"""A shopper's open inbox gets each new message as its campaign starts sending (graphql-transport-ws)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.inbox.types import InboxItemType
from server.api.push.types import PushTopic
from server.domain.inbox import service as inbox
from server.domain.inbox.models import item_of


@strawberry.type
class InboxSubscriptions:
    @strawberry.subscription(description="Each new message of inbox(districts, topics, locale), as soon as its "
                                         "campaign starts sending (the current ones come from the inbox query).")
    async def inbox_items(self, info: AppInfo, districts: list[strawberry.ID], topics: list[PushTopic] | None = None,
                          locale: str | None = None) -> AsyncGenerator[InboxItemType, None]:
        reader = info.context.operation_locale(locale)
        keys = [key_of(d, "District") for d in districts[:inbox.MAX_DISTRICTS]]
        hub = info.context.live_inbox()
        subscription = hub.subscribe(keys, [t.value for t in topics or []], reader)
        try:
            while True:
                campaign = await subscription.next()
                yield InboxItemType.of(item_of(campaign, reader), reader)
        finally:
            subscription.close()
