"""Live campaign views over graphql-transport-ws: an operator follows a campaign's progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any, Final

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.payloads import actor, attempt
from server.api.push.campaign_types import DONE, CampaignPayload, CampaignStatus, CampaignType
from server.domain.accounts import service as accounts
from server.domain.actor import ANONYMOUS, Actor
from server.domain.push import campaign_service

POLL_SECONDS: Final = 1.0  # a handful of operators follow a campaign: one read by _id each per second is cheap
IDLE_POLL_SECONDS: Final = 10.0


async def socket_actor(info: AppInfo) -> Actor:
    """Who opened the WebSocket: a bearer token in the connection_init payload (`{"authorization": "Bearer
    sq_…"}`, as browsers cannot set headers on a WebSocket), else the upgrade request's header or cookie."""
    params = info.context.connection_params
    authorization = params.get("authorization") if isinstance(params, dict) else None
    if isinstance(authorization, str) and authorization.lower().startswith("bearer "):
        return await accounts.actor_for_token(info.context.db, authorization[7:].strip()) or ANONYMOUS
    return await actor(info)


@strawberry.type
class CampaignSubscriptions:
    @strawberry.subscription(description="A campaign now, then each time its status or counts change; ends once it "
                                         "is SENT or CANCELLED. For operators of its districts (a bearer token in "
                                         "connection_init's payload as `authorization`); errors as in campaignStats.")
    async def campaign_progress(self, info: AppInfo, id: strawberry.ID,
                                locale: str | None = None) -> AsyncGenerator[CampaignPayload, None]:
        ctx = info.context
        reader = info.context.operation_locale(locale)
        who = await socket_actor(info)
        key = key_of(id, "Campaign")
        campaign, errors, _ = await attempt(info, campaign_service.for_operator(ctx.db, who, key))
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
            fresh = await campaign_service.get(ctx.db, key)
            if fresh is None:
                return
            campaign = fresh
