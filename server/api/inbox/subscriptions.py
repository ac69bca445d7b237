"""A shopper's open inbox gets each new message as its campaign starts sending (graphql-transport-ws)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator
from typing import Final

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.inbox.types import InboxItemType
from server.api.pagination import decode_cursor
from server.api.push.types import PushTopic
from server.domain.inbox import service as inbox
from server.domain.inbox.models import item_of

SHOWN_KEPT: Final = 256


@strawberry.type
class InboxSubscriptions:
    @strawberry.subscription(description="Each new message of inbox(districts, topics, locale), as soon as its "
                                         "campaign starts sending. Pass `newerThan`, the cursor of the newest item "
                                         "the inbox query gave you (an empty string when it gave none), and the "
                                         "messages that started sending since then come first, so that nothing "
                                         "falls between the query and the subscription.")
    async def inbox_items(self, info: AppInfo, districts: list[strawberry.ID], topics: list[PushTopic] | None = None,
                          locale: str | None = None,
                          newer_than: str | None = None) -> AsyncGenerator[InboxItemType, None]:
        reader = info.context.operation_locale(locale)
        keys = [key_of(d, "District") for d in districts[:inbox.MAX_DISTRICTS]]
        after = decode_cursor(newer_than) if newer_than else None
        hub = info.context.live_inbox()
        subscription = hub.subscribe(keys, [t.value for t in topics or []], reader)  # first: nothing slips by
        try:
            # Once each: a campaign may come both from the replay and live, or be announced twice.
            shown: deque[str] = deque(maxlen=SHOWN_KEPT)
            if newer_than is not None:
                for campaign in hub.recent_for(subscription, after):
                    shown.append(campaign.id)
                    yield InboxItemType.of(item_of(campaign, reader), reader)
            while True:
                campaign = await subscription.next()
                if campaign.id not in shown:
                    shown.append(campaign.id)
                    yield InboxItemType.of(item_of(campaign, reader), reader)
        finally:
            subscription.close()
