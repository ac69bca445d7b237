"""Push campaigns: composed by a district operator (form or GraphQL), sent by the worker, kept as inbox items.

The application service: authorization, validation (server/domain/push/campaign_rules.py) and storage
(server/domain/push/campaign_repository.py) in the order every caller needs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit.repository import record as audit
from server.domain.errors import NotFound
from server.domain.forms import Problems
from server.domain.push import campaign_repository as repository
from server.domain.push import progress
from server.domain.push.campaign import (
    AWAITING_APPROVAL,
    CANCELLED,
    FESTIVAL_ENDED,
    MAX_DISTRICTS,
    MIN_TTL,
    NOT_AWAITING,
    OWN_CAMPAIGN,
    SENDING,
    SOURCE_OPERATOR,
    Campaign,
    CampaignInput,
    Preview,
)
from server.domain.push.campaign_rules import fits, validated
from server.services.mongo import Doc
from server.services.public_cache import changed

log = logging.getLogger("shangquan.push.campaigns")
WAKE_CHANNEL: Final = "push_expand_wake"  # a campaign became due: the workers' expand loops look now


def _authorize(actor: Actor, districts: list[str]) -> None:
    if districts:
        authz.district_operator(actor, districts, "districts")
    else:
        authz.require_scope(actor, "districts")


async def _validated(db: AsyncDatabase[Doc], actor: Actor, data: CampaignInput, *, now: datetime,
                     approval: bool, source: str, request_id: str | None,
                     campaign_id: str | None = None, check_size: bool = True) -> dict[str, Any]:
    districts = sorted(set(data.district_ids))
    known = await repository.known_districts(db, districts) if 0 < len(districts) <= MAX_DISTRICTS else 0
    return validated(data, account_id=actor.account_id, now=now, approval=approval, source=source,
                     request_id=request_id, known_districts=known,
                     festival_ends=await repository.festival_end(db, data.festival_id),
                     campaign_id=campaign_id, check_size=check_size)


async def create(db: AsyncDatabase[Doc], actor: Actor, data: CampaignInput, *, now: datetime,
                 approval: bool = False, source: str = SOURCE_OPERATOR, request_id: str | None = None,
                 campaign_id: str | None = None) -> Campaign:
    """Validate, authorize (an operator of every target district, or an admin) and store a campaign.

    With `approval` (four-eyes, the PUSH_APPROVAL setting) it waits for another operator's `approve`;
    otherwise the worker sends it from its send time.  A given `campaign_id` (32 hex digits) makes a
    retried create a DuplicateKeyError instead of a second campaign.
    """
    _authorize(actor, sorted(set(data.district_ids)))
    doc = await _validated(db, actor, data, now=now, approval=approval, source=source, request_id=request_id,
                           campaign_id=campaign_id)
    await repository.insert(db, doc)
    await audit(db, actor, "push_campaign.create", "push_campaign", doc["_id"], doc["district_ids"], None, doc)
    await changed(freshness.INBOX)  # in the inbox from its send time (an entry lives a minute at most)
    return Campaign.from_doc(doc)


async def preview(db: AsyncDatabase[Doc], actor: Actor, data: CampaignInput, *,
                  now: datetime) -> tuple[list[Preview], int]:
    """What each locale's readers would get, and how many subscriptions it would reach now; nothing is stored."""
    _authorize(actor, sorted(set(data.district_ids)))
    # a message too large is shown with fits=False rather than refused, so the operator sees which locale
    draft = Campaign.from_doc(await _validated(db, actor, data, now=now, approval=False, source=SOURCE_OPERATOR,
                                               request_id=None, check_size=False))
    previews = []
    for locale in draft.locales:
        title, body, url = draft.localized(locale)
        payload = draft.payload(locale)
        previews.append(Preview(locale, title, body, url, draft.image_for(locale), len(payload), fits(payload)))
    return previews, await estimate(db, draft.district_ids, draft.topics, draft.locales)


async def estimate(db: AsyncDatabase[Doc], district_ids: Sequence[str], topics: Sequence[str],
                   locales: Sequence[str]) -> int:
    """Subscriptions a campaign would reach now (before quiet hours and the daily cap)."""
    if not district_ids or not topics or not locales:
        return 0
    return await repository.audience_count(db, district_ids, topics, locales)


async def get(db: AsyncDatabase[Doc], campaign_id: str) -> Campaign | None:
    return await repository.get(db, campaign_id)


async def for_operator(db: AsyncDatabase[Doc], actor: Actor, campaign_id: str) -> Campaign:
    """A campaign whose stats `actor` may read: an operator of all its districts, or an admin."""
    authz.require_scope(actor, "districts")
    campaign = await get(db, campaign_id) if len(campaign_id) <= 64 else None
    if campaign is None:
        raise NotFound("no such campaign")
    authz.district_operator(actor, list(campaign.district_ids), "districts")
    return campaign


async def approve(db: AsyncDatabase[Doc], actor: Actor, campaign_id: str, *, now: datetime) -> Campaign:
    """Four-eyes: another operator of all its districts (or an admin) releases a campaign awaiting approval.

    A send time already passed becomes now, so the TTL still counts from when it is really sent.
    """
    campaign = await for_operator(db, actor, campaign_id)
    p = Problems()
    if campaign.status != AWAITING_APPROVAL:
        p.add("id", NOT_AWAITING)
    elif campaign.created_by is not None and campaign.created_by == actor.account_id:
        p.add("id", OWN_CAMPAIGN)
    p.raise_if_any()
    send_ts = max(campaign.send_at_ts, now.timestamp())
    ttl = campaign.ttl
    if campaign.festival_id:  # approved late, it still must not outlive its festival
        ends = await repository.festival_end(db, campaign.festival_id)
        if ends is not None:
            ttl = int(min(ttl, ends - send_ts))
        if ttl < MIN_TTL:
            p.add("id", FESTIVAL_ENDED)
            p.raise_if_any()
    if await repository.release(db, campaign.id, approved_by=actor.account_id, send_ts=send_ts, ttl=ttl):
        await audit(db, actor, "push_campaign.approve", "push_campaign", campaign.id, list(campaign.district_ids),
                    {"status": AWAITING_APPROVAL}, {"status": SENDING})
        await changed(freshness.INBOX)
    after = await get(db, campaign.id)
    assert after is not None
    return after


async def recent(db: AsyncDatabase[Doc], actor: Actor, *, limit: int = 50) -> list[Campaign]:
    """The newest campaigns of the districts `actor` operates (all of them for an admin)."""
    if not actor.is_admin:
        authz.district_operator(actor, set(actor.district_ids), "districts")
    found = await repository.newest(db, None if actor.is_admin else sorted(actor.district_ids), limit)
    # a campaign spanning districts the operator does not run stays hidden, as for_operator would refuse it
    return [c for c in found if actor.is_admin or set(c.district_ids) <= set(actor.district_ids)]


async def cancel(db: AsyncDatabase[Doc], actor: Actor, campaign_id: str) -> Campaign:
    """Stop what is not yet sent: the worker checks the status before every message (idempotent)."""
    campaign = await for_operator(db, actor, campaign_id)
    if campaign.status != CANCELLED:
        await repository.set_status(db, campaign.id, CANCELLED)
        await audit(db, actor, "push_campaign.cancel", "push_campaign", campaign.id, list(campaign.district_ids),
                    {"status": campaign.status}, {"status": CANCELLED})
        await changed(freshness.INBOX)
    after = await get(db, campaign.id)
    assert after is not None
    return after


async def count_click(db: AsyncDatabase[Doc], campaign_id: str) -> bool:
    """A shopper opened a campaign's notification (reported by the service worker); False if unknown."""
    if not (isinstance(campaign_id, str) and len(campaign_id) == 32 and campaign_id.isalnum()):
        return False
    return await repository.count_click(db, campaign_id)


async def create_and_start(db: AsyncDatabase[Doc], redis: Redis, actor: Actor, data: CampaignInput, *,
                           now: datetime, approval: bool = False, request_id: str | None = None) -> Campaign:
    """`create`, then set it going if it is due: what the compose form and the GraphQL mutation both do."""
    campaign = await create(db, actor, data, now=now, approval=approval, request_id=request_id)
    await start_if_due(redis, campaign, now=now.timestamp())
    return campaign


async def approve_and_start(db: AsyncDatabase[Doc], redis: Redis, actor: Actor, campaign_id: str, *,
                            now: datetime) -> Campaign:
    """`approve`, then set it going if it is due."""
    campaign = await approve(db, actor, campaign_id, now=now)
    await progress.changed(redis, campaign.id)  # operators following it see it approved at once
    await start_if_due(redis, campaign, now=now.timestamp())
    return campaign


async def start_if_due(redis: Redis, campaign: Campaign, *, now: float) -> None:
    """Wake the workers' expand loops for a just-stored (or just-approved) campaign that is due, instead of
    waiting for their next look (`expand_every`).  Nothing is expanded here: a web request stores the campaign
    and returns, whatever its audience.  A lost wake-up only costs that second."""
    if not campaign.due(now):
        return
    try:
        await redis.publish(WAKE_CHANNEL, campaign.id)
    except Exception:  # Redis trouble: the expand loops look within `expand_every` anyway
        log.warning("campaign %s: workers not woken; they start it within a second", campaign.id, exc_info=True)
