"""Per-request DataLoaders: one MongoDB round trip per list field and level."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pymongo.asynchronous.database import AsyncDatabase
from strawberry.dataloader import DataLoader

from server.api.memo import VersionedMemo
from server.domain.categories.repository import list_categories, names_by_ids
from server.domain.crowd.models import Crowd
from server.domain.crowd.state import area_crowds
from server.domain.districts import repository as districts
from server.domain.districts.models import Area, District
from server.domain.festivals import repository as festivals
from server.domain.festivals.models import Festival
from server.domain.images import repository as images
from server.domain.images.models import Image
from server.domain.merchants import counts as merchant_counts
from server.domain.merchants import repository as merchants
from server.domain.merchants.models import Merchant
from server.domain.offers import repository as offers
from server.domain.offers.models import Offer
from server.domain.products import repository as products
from server.domain.products.models import Product
from server.services.mongo import Doc
from server.settings import Settings

K = TypeVar("K")
V = TypeVar("V")


def _by_key(fetch: Callable[[list[str]], Awaitable[dict[str, V]]], default: Any = None) -> DataLoader[str, Any]:
    async def load(keys: Sequence[str]) -> list[Any]:
        found = await fetch(list(dict.fromkeys(keys)))
        return [found.get(k, default() if callable(default) else default) for k in keys]

    return DataLoader(load_fn=load)


class Loaders:
    def __init__(self, db: AsyncDatabase[Doc], now: datetime, settings: Settings, *,
                 categories_key: Any = None, memo: VersionedMemo | None = None,
                 entity_memo: VersionedMemo | None = None, catalog_key: Any = None) -> None:
        def kept(kind: str, fetch: Callable[[list[str]], Awaitable[dict[str, V]]]
                 ) -> Callable[[list[str]], Awaitable[dict[str, V]]]:
            """Merchants, districts and a merchant's pictures change only with writes that bump ANY_WRITE (or a
            content load: EVERYTHING), so under `catalog_key` (those versions) the process memo keeps them by id:
            the miss an offer edit causes in near me reads its offers, not its shops again."""
            if entity_memo is None or catalog_key is None:
                return fetch
            keeper = entity_memo
            return lambda ids: keeper.get_many({i: (catalog_key, kind, i) for i in ids}, fetch)

        self.district: DataLoader[str, District | None] = _by_key(
            kept("district", lambda ids: districts.districts_by_ids(db, ids)))
        self.area: DataLoader[str, Area | None] = _by_key(lambda ids: districts.areas_by_ids(db, ids))
        self.areas_of_district: DataLoader[str, list[Area]] = _by_key(self._areas_of_districts, list)
        self.merchant: DataLoader[str, Merchant | None] = _by_key(
            kept("merchant", lambda ids: merchants.merchants_by_ids(db, ids)))
        self.active_offers_of_merchant: DataLoader[str, list[Offer]] = _by_key(
            lambda ids: offers.active_by_merchants(db, ids, now), list)
        self.offers_of_festival: DataLoader[str, list[Offer]] = _by_key(
            lambda ids: offers.by_festivals(db, ids), list)
        self.offer: DataLoader[str, Offer | None] = _by_key(lambda ids: offers.by_ids(db, ids))
        self.products_of_merchant: DataLoader[str, list[Product]] = _by_key(
            lambda ids: products.by_merchants(db, ids), list)
        self.product: DataLoader[str, Product | None] = _by_key(lambda ids: products.by_ids(db, ids))
        self.festival: DataLoader[str, Festival | None] = _by_key(lambda ids: festivals.by_ids(db, ids))
        # pictures by owner ("merchant:<id>", "product:<id>", "festival:<id>"): one read per level
        self.images: DataLoader[str, list[Image]] = _by_key(
            kept("images", lambda refs: images.by_owners(db, refs)), list)
        self.category_name: DataLoader[str, dict[str, str] | None] = _by_key(
            lambda ids: names_by_ids(db, ids))
        if memo is not None and categories_key is not None:
            # All names (a few dozen), kept while no content load changed them
            every = memo
            self.category_name = _by_key(lambda ids: every.get(categories_key, lambda: _all_category_names(db)))
        self.crowd: DataLoader[str, Crowd | None] = _by_key(self._crowds)
        # published merchants per counter key (merchants/counts.py): Home's districts in one read
        self.merchant_count: DataLoader[str, int] = _by_key(lambda keys: merchant_counts.by_keys(db, keys), int)
        self._db, self._now, self._settings = db, now, settings

    async def _areas_of_districts(self, ids: list[str]) -> dict[str, list[Area]]:
        found = await districts.areas_by_district(self._db, ids)
        for areas in found.values():  # a district's areas are then known by id too (capacity for crowds)
            for area in areas:
                self.area.prime(area.id, area)
        return found

    async def _crowds(self, ids: list[str]) -> dict[str, Crowd]:
        areas = [a for a in await self.area.load_many(ids) if a is not None]
        settings = self._settings
        return await area_crowds(self._db, [(a.id, a.capacity) for a in areas], self._now,
                                 settings.crowd_stale_minutes, settings.crowd_thresholds)




async def _all_category_names(db: AsyncDatabase[Doc]) -> dict[str, dict[str, str]]:
    return {d["_id"]: d["name"] for d in await list_categories(db)}
