"""Campaign progress goes live through Redis pub/sub: whoever changes a campaign's status or counters says so
on `CHANNEL` (its id), and each web process re-reads the campaign once for everyone following it."""

from __future__ import annotations

import logging
from typing import Final

from redis.asyncio import Redis

CHANNEL: Final = "push_progress"
log = logging.getLogger("shangquan.push")


async def changed(redis: Redis, campaign_id: str) -> None:
    """Best effort: a lost announcement only delays the operator's view until the next one."""
    try:
        await redis.publish(CHANNEL, campaign_id)
    except Exception as exc:  # never let the live view break a send
        log.warning("progress of campaign %s not announced (%s)", campaign_id, exc)
