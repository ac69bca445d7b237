"""Counters recounted from the delivery records when a worker died between writing a group of outcomes and
`$inc`ing the campaign's counters: the records are authoritative, the counters a fast summary of them.

Only campaigns whose every record is final are touched, so no worker is still moving those counters (a
click is counted separately and left alone).
"""

from __future__ import annotations

from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.push import campaigns
from server.domain.push.campaigns import FINAL_STATS, Campaign
from server.domain.push.models import DELIVERIES, WAITING
from server.services.mongo import Doc

LOOK_BACK: Final = 2 * 24 * 3600  # campaigns sent in the last two days; older ones were long reconciled
# A group's outcomes are written a moment before their `$inc`: only records quiet this long are recounted,
# or the recount and that `$inc` would both land.
QUIET_FOR: Final = 60.0


async def reconcile(db: AsyncDatabase[Doc], *, now: float) -> list[str]:
    """Recount the campaigns that are done but whose counters fall short; returns their ids."""
    fixed = []
    cursor = db[campaigns.COLLECTION].find({"stage": campaigns.STAGE_EXPANDED, "send_at_ts": {"$gt": now - LOOK_BACK}})
    for doc in [d async for d in cursor]:
        campaign = Campaign.from_doc(doc)
        if campaign.finished():
            continue
        if await db[DELIVERIES].find_one({"campaign_id": campaign.id, "state": {"$in": list(WAITING)}}, {"_id": 1}):
            continue  # still sending: its counters are still moving
        states: dict[str, int] = {}
        posted = 0
        newest = 0.0
        async for record in db[DELIVERIES].find({"campaign_id": campaign.id}, {"state": 1, "posted": 1, "at": 1}):
            states[str(record.get("state"))] = states.get(str(record.get("state")), 0) + 1
            posted += 1 if record.get("posted") else 0
            newest = max(newest, float(record.get("at") or 0))
        if sum(states.values()) < campaign.stats["targeted"] or newest > now - QUIET_FOR:
            continue  # batches still queued on the stream, or outcomes whose `$inc` may still come
        counts: dict[str, Any] = {f"stats.{name}": states.get(name, 0) for name in FINAL_STATS}
        counts["stats.sent"] = posted
        await db[campaigns.COLLECTION].update_one({"_id": campaign.id}, {"$set": counts})
        fixed.append(campaign.id)
    return fixed
