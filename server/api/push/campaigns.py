"""Campaigns in GraphQL: compose, preview, approve, cancel, follow."""

from __future__ import annotations

import strawberry

from server.api.common import AppInfo
from server.api.context import Context
from server.api.ids import key_of
from server.api.pagination import page_size
from server.api.payloads import FieldError, actor, attempt
from server.api.push.campaign_types import (
    CampaignInput,
    CampaignListPayload,
    CampaignPayload,
    CampaignPreview,
    CampaignPreviewPayload,
    CampaignType,
)
from server.domain.actor import Actor
from server.domain.push import campaign_service, progress
from server.domain.push.campaign import Campaign

RECENT_DEFAULT = 20


def _payload(ctx: Context, campaign: Campaign | None, errors: list[FieldError], viewer: Actor) -> CampaignPayload:
    view = CampaignType.of(campaign, ctx.locale, ctx.now, viewer) if campaign else None
    return CampaignPayload(campaign=view, errors=errors)


@strawberry.type
class CampaignQueries:
    @strawberry.field(description="A campaign with its progress; for operators of its districts.")
    async def campaign_stats(self, info: AppInfo, id: strawberry.ID) -> CampaignPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(info, campaign_service.for_operator(ctx.db, who, key_of(id, "Campaign")))
        return _payload(ctx, result, errors, who)

    @strawberry.field(description="The newest campaigns of the districts the caller operates (all for an admin).")
    async def campaigns(self, info: AppInfo, first: int | None = None) -> CampaignListPayload:
        ctx = info.context
        who = await actor(info)
        size = page_size(first if first is not None else RECENT_DEFAULT)
        found, errors, _ = await attempt(info, campaign_service.recent(ctx.db, who, limit=size))
        return CampaignListPayload(campaigns=[CampaignType.of(c, ctx.locale, ctx.now, who) for c in found or []],
                                   errors=errors)

    @strawberry.field(description="What each locale's subscribers would get, and how many subscriptions it would "
                                  "reach now; checks the input as createCampaign does and stores nothing.")
    async def preview_campaign(self, info: AppInfo, input: CampaignInput) -> CampaignPreviewPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(info, campaign_service.preview(ctx.db, who, input.to_service(), now=ctx.now))
        if result is None:
            return CampaignPreviewPayload(previews=[], audience=None, errors=errors)
        previews, audience = result
        return CampaignPreviewPayload(previews=[CampaignPreview.of(p) for p in previews], audience=audience,
                                      errors=[])


@strawberry.type
class CampaignMutations:
    @strawberry.mutation(description="Compose a campaign: sent at its send time, after a second operator's approval "
                                     "when four-eyes approval is on.")
    async def create_campaign(self, info: AppInfo, input: CampaignInput) -> CampaignPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(info, campaign_service.create_and_start(
            ctx.db, ctx.redis, who, input.to_service(), now=ctx.now, approval=ctx.settings.push_approval,
            request_id=ctx.request_id))
        return _payload(ctx, result, errors, who)

    @strawberry.mutation(description="Four-eyes: release a campaign another operator composed; sent at its send "
                                     "time, or now if that has passed.")
    async def approve_campaign(self, info: AppInfo, id: strawberry.ID) -> CampaignPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(
            info, campaign_service.approve_and_start(ctx.db, ctx.redis, who, key_of(id, "Campaign"), now=ctx.now))
        return _payload(ctx, result, errors, who)

    @strawberry.mutation(description="Stop sending what is not yet sent; the campaign leaves the inbox.")
    async def cancel_campaign(self, info: AppInfo, id: strawberry.ID) -> CampaignPayload:
        ctx = info.context
        who = await actor(info)
        result, errors, _ = await attempt(info, campaign_service.cancel(ctx.db, who, key_of(id, "Campaign")))
        if result is not None:
            await progress.changed(ctx.redis, result.id)
        return _payload(ctx, result, errors, who)
