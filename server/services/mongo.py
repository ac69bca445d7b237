"""MongoDB client and the indexes every collection relies on."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import CommandListener, ServerDescriptionChangedEvent, ServerListener
from pymongo.server_type import SERVER_TYPE

from server.services.availability import outage

Doc = dict[str, Any]

INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "districts": [([("search_terms", ASCENDING)], {})],
    "areas": [([("district_id", ASCENDING)], {})],
    # pictures: how many an owner has (the upload limit); a key's records when its bytes are asked for
    # (shopper pages read them by _id: images/repository.py)
    "images": [([("owner", ASCENDING)], {}), ([("key", ASCENDING)], {})],
    # Lists read in `key` order (a copy of _id: nx-27017 cannot index _id with other fields), each
    # filter's index ending in key so a page is one index range; "near" reads geo_bands ranges.
    "merchants": [
        ([("district_id", ASCENDING)], {}),
        ([("area_id", ASCENDING)], {}),
        ([("categories", ASCENDING)], {}),
        ([("key", ASCENDING)], {}),
        ([("district_id", ASCENDING), ("key", ASCENDING)], {}),
        ([("area_id", ASCENDING), ("key", ASCENDING)], {}),
        ([("categories", ASCENDING), ("key", ASCENDING)], {}),
        ([("open_keys", ASCENDING), ("key", ASCENDING)], {}),
        # server.domain.geo.BANDS_M (tests/contract checks they agree)
        *(([(f"geo_bands.b{band}", ASCENDING)], {}) for band in (100, 400, 1_600, 6_400, 25_600)),
    ],
    # search and open-now lists of merchant keys, a block per document (merchants/postings_repository.py)
    # (the single-field index on `list` tells nx-27017 the field is a scalar: without one it adds an
    # array-containment check to the equality, which no index serves)
    "merchant_postings": [([("list", ASCENDING)], {}), ([("list", ASCENDING), ("last", ASCENDING)], {})],
    "offers": [
        ([("merchant_id", ASCENDING)], {}),
        # the DistrictPage's active offers of a page of merchants: filter and range in one index
        ([("merchant_id", ASCENDING), ("valid_until", ASCENDING)], {}),
        ([("festival_id", ASCENDING)], {}),
        ([("valid_until", ASCENDING)], {}),
        ([("valid_from", ASCENDING)], {}),  # the next offer to begin (server/domain/boundaries.py)
        # offer lists in order of their end ("ending soon"): a string copy of valid_until, see offers/models.py
        ([("until_key", ASCENDING)], {}),
    ],
    # per offer and Shenzhen day (_id "offer:day"); dashboards read a merchant's or a festival's days
    "offer_stats_daily": [([("merchant_id", ASCENDING), ("day", ASCENDING)], {}),
                          ([("festival_id", ASCENDING), ("day", ASCENDING)], {}),
                          ([("district_id", ASCENDING), ("day", ASCENDING)], {})],
    # _id is the code; `slot` (offer:device:n) is unique so a device's claims never pass the offer's limit
    "coupons": [([("slot", ASCENDING)], {"unique": True}),
                ([("offer_id", ASCENDING), ("device_hash", ASCENDING)], {}),
                ([("device_hash", ASCENDING), ("claimed_at", DESCENDING)], {})],
    "festivals": [([("ends_on", ASCENDING)], {}), ([("district_ids", ASCENDING)], {}),
                  ([("starts_at", ASCENDING)], {}), ([("ends_at", ASCENDING)], {})],
    "accounts": [([("email", ASCENDING)], {"unique": True})],
    "api_tokens": [([("token_hash", ASCENDING)], {"unique": True}), ([("account_id", ASCENDING)], {})],
    "sensors": [([("key_hash", ASCENDING)], {"unique": True}), ([("district_id", ASCENDING)], {})],
    # `at` carries the retention TTL (see ensure_indexes); real MongoDB expires old readings by it
    "crowd_readings": [([("area_id", ASCENDING)], {})],
    "crowd_hourly": [([("area_id", ASCENDING), ("hour_ts", ASCENDING)], {})],
    "crowd_alerts": [([("district_id", ASCENDING)], {})],
    "push_campaigns": [([("district_ids", ASCENDING)], {}), ([("send_at_ts", DESCENDING)], {}),
                       ([("created_ts", DESCENDING)], {}),
                       ([("stage", ASCENDING)], {})],
    "push_deliveries": [([("state", ASCENDING), ("due", ASCENDING)], {}), ([("campaign_id", ASCENDING)], {})],
    "push_subscriptions": [([("districts", ASCENDING)], {}), ([("origin", ASCENDING)], {})],
    "audit": [([("district_ids", ASCENDING)], {}), ([("at", ASCENDING)], {})],
    "products": [
        ([("sold_by", ASCENDING)], {}),
        ([("category", ASCENDING)], {}),
        ([("search_terms", ASCENDING)], {}),
    ],
}


class OutageListener(ServerListener):
    """Tells the process's MongoDB Outage when the driver loses its server and when it finds it again, so a
    MongoDB outage is logged once, and its end too, whoever met it."""

    def opened(self, event: object) -> None:
        pass

    def closed(self, event: object) -> None:
        pass

    def description_changed(self, event: ServerDescriptionChangedEvent) -> None:
        before, after = event.previous_description, event.new_description
        if after.server_type == SERVER_TYPE.Unknown and before.server_type != SERVER_TYPE.Unknown:
            outage("mongodb").down(str(after.error or "connection lost").split(" (configured timeouts")[0])
        elif after.server_type != SERVER_TYPE.Unknown:
            outage("mongodb").up()


async def earliest_after(db: AsyncDatabase[Doc], collection: str, field: str, after: Any,
                         query: Doc | None = None, *, read: str | None = None) -> Any:
    """The smallest `field` above `after` (one indexed find-one): when something next happens. `read` names
    the field to answer instead, when `field` is a sortable copy of it."""
    doc = await db[collection].find_one({**(query or {}), field: {"$gt": after}}, {read or field: 1},
                                        sort=[(field, 1)])
    return None if doc is None else doc[read or field]


def connect(url: str, *, listeners: list[CommandListener] | None = None,
            timeout_ms: int = 5000) -> AsyncMongoClient[Doc]:
    """timeout_ms bounds finding a server and connecting to it: while MongoDB is down, a request fails
    (503) after that long instead of pymongo's default 30 s, and the client reconnects on its own later."""
    return AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
        event_listeners=[*(listeners or []), OutageListener()],
    )


async def ensure_indexes(db: AsyncDatabase[Doc], retention_days: int = 90) -> None:
    for collection, indexes in INDEXES.items():
        for keys, options in indexes:
            await db[collection].create_index(keys, **options)
    await db.crowd_readings.create_index([("at", ASCENDING)], expireAfterSeconds=retention_days * 86400)
