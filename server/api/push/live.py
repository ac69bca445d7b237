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

CLOCK_SLACK: Final = 0.5  # wake a little after a scheduled send time, so the clock says SENDING


async def socket_actor(info: AppInfo) -> Actor:
    """Who opened the WebSocket: a bearer token in the connection_init payload (`{"authorization": "Bearer
    sq_…"}`, as browsers cannot set headers on a WebSocket), else the upgrade request's header or cookie."""
    params = info.context.connection_params
    authorization = params.get("authorization") if isinstance(params, dict) else None
    if isinstance(authorization, str) and authorization.lower().startswith("bearer "):
        return await accounts.actor_for_token(info.context.db, authorization[7:].strip()) or ANONYMOUS
    if info.context.request is None:  # a shared feed: its key carries the credentials, already in the params
        return ANONYMOUS
    return await actor(info)


@strawberry.type
class CampaignSubscriptions:
    @strawberry.subscription(description="A campaign now, then each time its status or counts change (a few times a "
                                         "second at most); ends once it is SENT or CANCELLED. For operators of its "
                                         "districts (a bearer token in connection_init's payload as "
                                         "`authorization`); errors as in campaignStats.")
    async def campaign_progress(self, info: AppInfo, id: strawberry.ID,
                                locale: str | None = None) -> AsyncGenerator[CampaignPayload, None]:
        ctx = info.context
        reader = ctx.operation_locale(locale)
        key = key_of(id, "Campaign")
        watch = ctx.live_progress().watch(key)  # before the read, so a change made meanwhile is not missed
        try:
            who = await socket_actor(info)
            campaign, errors, _ = await attempt(info, campaign_service.for_operator(ctx.db, who, key))
            if campaign is None:
                yield CampaignPayload(campaign=None, errors=errors)
                return
            last: tuple[Any, ...] | None = None
            while True:
                now = datetime.now(UTC)
                view = CampaignType.of(campaign, reader, now, who)
                state = (view.status, campaign.stage, tuple(sorted(campaign.stats.items())), campaign.send_at_ts)
                if state != last:
                    last = state
                    yield CampaignPayload(campaign=view, errors=[])
                if view.status in DONE:
                    return
                # No polling: the worker and the console announce every change (server/domain/push/progress.py);
                # a scheduled campaign also turns SENDING by the clock, so wake at its send time.
                wait = campaign.send_at_ts - now.timestamp() if view.status is CampaignStatus.SCHEDULED else None
                try:
                    campaign = await asyncio.wait_for(watch.next(), timeout=max(wait, 0.0) + CLOCK_SLACK
                                                      if wait is not None else None)
                except TimeoutError:
                    continue
        finally:
            watch.close()
