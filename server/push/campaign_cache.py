"""The campaigns a consumer is sending, re-read at most every `status_cache` seconds (so a cancel is seen
within that), and each one's payload per locale, built once."""

from __future__ import annotations

import asyncio
import time

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.push import campaign_repository
from server.domain.push.campaign import Campaign
from server.services.mongo import Doc


class CampaignCache:
    def __init__(self, db: AsyncDatabase[Doc], status_cache: float) -> None:
        self.db = db
        self._status_cache = status_cache
        self._campaigns: dict[str, tuple[float, Campaign | None]] = {}
        self._loading: dict[str, asyncio.Task[Campaign | None]] = {}
        self._payloads: dict[tuple[str, str], bytes] = {}

    async def get(self, campaign_id: str, *, fresh: bool = False) -> Campaign | None:
        """The campaign; one read however many sends ask at once."""
        cached = self._campaigns.get(campaign_id)
        if not fresh and cached is not None and cached[0] >= time.monotonic():
            return cached[1]
        loading = self._loading.get(campaign_id)
        if loading is None:
            loading = self._loading[campaign_id] = asyncio.create_task(self._load(campaign_id))
            loading.add_done_callback(lambda _: self._loading.pop(campaign_id, None))
        return await asyncio.shield(loading)

    async def _load(self, campaign_id: str) -> Campaign | None:
        campaign = await campaign_repository.get(self.db, campaign_id)
        if len(self._campaigns) > 1000:
            self._campaigns.clear()
            self._payloads.clear()
        self._campaigns[campaign_id] = (time.monotonic() + self._status_cache, campaign)
        return campaign

    def payload(self, campaign: Campaign, locale: str) -> bytes:
        key = (campaign.id, locale)
        payload = self._payloads.get(key)
        if payload is None:
            payload = self._payloads[key] = campaign.payload(locale)
        return payload
