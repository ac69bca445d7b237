"""When the catalogue next changes by the clock alone: an offer or a festival begins or ends, a scheduled
campaign reaches its send time.

A cached public answer (server/api/cached_reads.py) must end by then even when the thing that changes is not in
it yet (an offer of the page's merchants becoming valid). City-wide on purpose: one small indexed query per
field, and a write that adds such an instant bumps the tags of the answers it could enter, so the caller may
keep the result for as long as those tags keep their versions.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.festivals import repository as festivals
from server.domain.offers import repository as offers
from server.domain.push import campaign_repository as campaigns
from server.services.mongo import Doc


async def next_change(db: AsyncDatabase[Doc], after: datetime) -> float | None:
    """Epoch seconds of the first such instant strictly after `after`, None when none is known."""
    offer, festival, send = await asyncio.gather(offers.next_boundary(db, after), festivals.next_boundary(db, after),
                                                 campaigns.next_send(db, after.timestamp()))
    found = [_seconds(offer), _seconds(festival), send]
    return min((f for f in found if f is not None), default=None)


def _seconds(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    # the driver answers naive UTC datetimes unless the client is tz-aware
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
