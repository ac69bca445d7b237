"""Live campaign views over graphql-transport-ws: an operator follows a campaign's progress; a shopper's open
inbox gets each new message as its campaign starts sending."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any, Final

import strawberry

from server.api.common import AppInfo
from server.api.errors import UNSUPPORTED_LOCALE, ApiError
from server.api.ids import key_of
from server.api.payloads import actor, attempt
from server.api.push.campaign_types import DONE, CampaignPayload, CampaignStatus, CampaignType, InboxItemType
from server.api.push.inbox_hub import InboxHub
from server.api.push.types import PushTopic
from server.domain.accounts import service as accounts
from server.domain.accounts.models import ANONYMOUS, Actor
from server.domain.i18n import LOCALES, canonical_locale
from server.domain.push import campaigns, inbox

POLL_SECONDS: Final = 1.0  # a handful of operators follow a campaign: one read by _id each per second is cheap
IDLE_POLL_SECONDS: Final = 10.0


async def socket_actor(info: AppInfo) -> Actor:
    """Who opened the WebSocket: a bearer token in the connection_init payload (`{"authorization": "Bearer
    sq_…"}`, as browsers cannot set headers on a WebSocket), else the upgrade request's header or cookie."""
    params: Any = getattr(info.context, "connection_params", None)
    authorization = params.get("authorization") if isinstance(params, dict) else None
    if isinstance(authorization, str) and authorization.lower().startswith("bearer "):
        return await accounts.actor_for_token(info.context.db, authorization[7:].strip()) or ANONYMOUS
    return await actor(info)


def _locale(info: AppInfo, requested: str | None) -> str:
    # Not Context.use_locale: one socket carries many operations, each may read its own locale.
    if requested is None:
        return info.context.locale
    locale = canonical_locale(requested) if len(requested) <= 20 else None
    if locale is None:
        raise ApiError(UNSUPPORTED_LOCALE, f"locale {requested[:20]!r} is not supported; use one of "
                       f"{', '.join(LOCALES)}", supported=list(LOCALES))
    return locale


@strawberry.type
class CampaignSubscriptions:
    @strawberry.subscription(description="A campaign now, then each time its status or counts change; ends once it "
                                         "is SENT or CANCELLED. For operators of its districts (a bearer token in "
                                         "connection_init's payload as `authorization`); errors as in campaignStats.")
    async def campaign_progress(self, info: AppInfo, id: strawberry.ID,
                                locale: str | None = None) -> AsyncGenerator[CampaignPayload, None]:
        ctx = info.context
        reader = _locale(info, locale)
        who = await socket_actor(info)
        key = key_of(id, "Campaign")
        campaign, errors, _ = await attempt(info, campaigns.for_operator(ctx.db, who, key))
        if campaign is None:
            yield CampaignPayload(campaign=None, errors=errors)
            return
        last: tuple[Any, ...] | None = None
        while True:
            view = CampaignType.of(campaign, reader, datetime.now(UTC), who)
            state = (view.status, campaign.stage, tuple(sorted(campaign.stats.items())), campaign.send_at_ts)
            if state != last:
                last = state
                yield CampaignPayload(campaign=view, errors=[])
            if view.status in DONE:
                return
            # every second while it sends; a scheduled or unapproved one can wait weeks, so look less often
            sending = view.status is CampaignStatus.SENDING
            await asyncio.sleep(POLL_SECONDS if sending else IDLE_POLL_SECONDS)
            fresh = await campaigns.get(ctx.db, key)
            if fresh is None:
                return
            campaign = fresh

    @strawberry.subscription(description="Each new message of inbox(districts, topics, locale), as soon as its "
                                         "campaign starts sending (the current ones come from the inbox query).")
    async def inbox_items(self, info: AppInfo, districts: list[strawberry.ID], topics: list[PushTopic] | None = None,
                          locale: str | None = None) -> AsyncGenerator[InboxItemType, None]:
        reader = _locale(info, locale)
        keys = [key_of(d, "District") for d in districts[:inbox.MAX_DISTRICTS]]
        hub: InboxHub = info.context.request.app.state.inbox_hub
        subscription = hub.subscribe(keys, [t.value for t in topics or []], reader)
        try:
            while True:
                campaign = await subscription.next()
                yield InboxItemType.of(inbox.item_of(campaign, reader), reader)
        finally:
            subscription.close()
