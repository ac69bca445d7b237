"""One Redis subscription per web process to the inbox channel, fanned out to its live inbox subscribers.

The worker publishes a campaign's id on `inbox.CHANNEL` when the campaign starts sending; the hub loads
the campaign once and hands it to every local subscriber whose inbox would list it. It also keeps the
campaigns announced in the last RECENT_SECONDS, so that a subscription opened just after an inbox query gets
what was announced in between (`inboxItems(newerThan:)`) from memory, not from a query per client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from server.domain.inbox import service as inbox
from server.domain.inbox.models import shows
from server.domain.paging import Key
from server.domain.push import campaign_service
from server.domain.push.campaign import Campaign
from server.services.mongo import Doc
from server.services.pubsub import Hub, put_newest

log = logging.getLogger("shangquan.push.inbox")
QUEUE_SIZE: Final = 16
MAX_ID: Final = 64
CLOCK_SKEW: Final = timedelta(seconds=5)
RECENT_SECONDS: Final = 600.0  # far longer than between a page's inbox query and its subscription
RECENT_KEPT: Final = 200


class InboxHub(Hub):
    name = "inbox hub"

    def __init__(self, redis: Redis, db: AsyncDatabase[Doc]) -> None:
        super().__init__(redis, log)
        self.db = db
        self.by_district: dict[str, set[InboxSubscription]] = defaultdict(set)
        self.recent: deque[tuple[float, Campaign]] = deque(maxlen=RECENT_KEPT)  # (monotonic when announced, it)

    async def listen_to(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(inbox.CHANNEL)

    async def handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == "message":
            await self._announced(message["data"])

    async def _announced(self, raw: str | bytes) -> None:
        campaign_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not campaign_id or len(campaign_id) > MAX_ID:
            return
        try:
            campaign = await campaign_service.get(self.db, campaign_id)
        except PyMongoError as exc:  # the shoppers' next refetch lists it; do not drop the Redis subscription
            log.warning("inbox hub could not load campaign %s (%s)", campaign_id, exc)
            return
        if campaign is not None:
            self.recent.append((time.monotonic(), campaign))
            self.dispatch(campaign)

    def recent_for(self, subscription: InboxSubscription, after: Key | None) -> list[Campaign]:
        """What was announced lately for this subscription's inbox and sorts after `after` (an inbox item key;
        None: everything recent), oldest first, once each."""
        horizon = time.monotonic() - RECENT_SECONDS
        now = datetime.now(UTC) + CLOCK_SKEW
        found: dict[str, Campaign] = {}
        for announced, campaign in self.recent:
            if announced < horizon or not shows(campaign, subscription.districts, subscription.topics,
                                                      subscription.locale, now=now):
                continue
            if after is None or (campaign.send_at_ts, campaign.id) > after:
                found[campaign.id] = campaign
        return sorted(found.values(), key=lambda c: (c.send_at_ts, c.id))

    def dispatch(self, campaign: Campaign) -> None:
        """Hands the campaign to each local subscriber whose inbox lists it (once, however many districts match)."""
        # The announcement says the campaign is due by the announcer's clock; this one may be a little behind.
        now = datetime.now(UTC) + CLOCK_SKEW
        targets = set().union(*(self.by_district.get(d, ()) for d in campaign.district_ids))
        for subscription in targets:
            if shows(campaign, subscription.districts, subscription.topics, subscription.locale, now=now):
                subscription.put(campaign)

    def subscribe(self, districts: list[str], topics: list[str], locale: str) -> InboxSubscription:
        subscription = InboxSubscription(self, sorted(set(districts)), topics, locale)
        for district in subscription.districts:
            self.by_district[district].add(subscription)
        return subscription


class InboxSubscription:
    def __init__(self, hub: InboxHub, districts: list[str], topics: list[str], locale: str) -> None:
        self.hub, self.districts, self.topics, self.locale = hub, districts, topics, locale
        self.queue: asyncio.Queue[Campaign] = asyncio.Queue(QUEUE_SIZE)

    def put(self, campaign: Campaign) -> None:
        put_newest(self.queue, campaign)  # a client this far behind refetches its inbox on reconnect anyway

    async def next(self) -> Campaign:
        return await self.queue.get()

    def close(self) -> None:
        for district in self.districts:
            subscribers = self.hub.by_district.get(district)
            if subscribers is not None:
                subscribers.discard(self)
                if not subscribers:
                    del self.hub.by_district[district]
