"""Campaigns a failure left unfinished, put right from their delivery records (the authoritative history):

- counters short because a worker died between writing a group of outcomes and `$inc`ing them: recounted,
  once every record is final and quiet (no worker is still moving them; clicks are left alone);
- subscribers without a record long after the expansion, because Redis lost stream entries (a restart
  without persistence): the campaign is expanded again, which the records make idempotent.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.push import campaign_repository
from server.domain.push.campaign import FINAL_STATS, Campaign
from server.domain.push.delivery_repository import Deliveries
from server.services.mongo import Doc

LOOK_BACK: Final = 2 * 24 * 3600  # campaigns sent in the last two days; older ones were long reconciled
# A group's outcomes are written a moment before their `$inc`: only records quiet this long are recounted,
# or the recount and that `$inc` would both land.
QUIET_FOR: Final = 60.0
STUCK_AFTER: Final = 600.0  # no record written for this long while some are missing: the batches are gone
log = logging.getLogger("shangquan.push.reconcile")


async def reconcile(db: AsyncDatabase[Doc], *, now: float) -> list[str]:
    """Recount the campaigns that are done but whose counters fall short; returns their ids."""
    fixed = []
    deliveries = Deliveries(db)
    for doc in await campaign_repository.expanded_since(db, now - LOOK_BACK):
        campaign = Campaign.from_doc(doc)
        if campaign.finished():
            continue
        if await deliveries.any_waiting(campaign.id):
            continue  # still sending: its counters are still moving
        states, posted, newest = await deliveries.tally(campaign.id)
        if sum(states.values()) < campaign.stats["targeted"]:
            if max(newest, float(doc.get("expanding_ts") or 0)) < now - STUCK_AFTER:
                await campaign_repository.expand_again(db, campaign.id)
                log.warning("campaign %s: %d of %d subscribers never got a record; expanding it again",
                            campaign.id, sum(states.values()), campaign.stats["targeted"],
                            extra={"campaign_id": campaign.id})
            continue  # batches still queued on the stream (or just queued again)
        if newest > now - QUIET_FOR:
            continue  # outcomes whose `$inc` may still come
        counts: dict[str, Any] = {f"stats.{name}": states.get(name, 0) for name in FINAL_STATS}
        counts["stats.sent"] = posted
        await campaign_repository.set_fields(db, campaign.id, counts)
        fixed.append(campaign.id)
    return fixed
