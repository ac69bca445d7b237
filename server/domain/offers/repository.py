from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from server.domain import versioned
from server.domain.offers.models import END, Offer, until_bound, until_key
from server.domain.offers.stats import FUNNEL, DayStats, day_of
from server.domain.paging import Key, Page, combine
from server.domain.paging import count as count_matching
from server.services.mongo import Doc, earliest_after

PUBLISHED = {"status": "published"}
DUPLICATE_KEY = 11000


def active_filter(at: datetime) -> dict[str, Any]:
    return {"valid_from": {"$lte": at}, "valid_until": {"$gt": at}}


async def next_boundary(db: AsyncDatabase[Doc], after: datetime) -> datetime | None:
    """The first instant after `after` at which some offer (of any merchant, listed or not yet) begins or ends.
    Ends through until_key, which nx-27017 reads as an index range (see until_key)."""
    found = [await earliest_after(db, "offers", "valid_from", after),
             await earliest_after(db, "offers", "until_key", until_bound(after) + END, read="valid_until")]
    return min((f for f in found if f is not None), default=None)


@dataclass(slots=True)
class OfferQuery:
    district_id: str | None = None
    merchant_id: str | None = None
    festival_id: str | None = None
    active_at: datetime | None = None
    ending_before: datetime | None = None


async def find_page(db: AsyncDatabase[Doc], q: OfferQuery, first: int, after: Key | None) -> Page[Offer]:
    """Offers in order of their end (soonest first), so "ending soon" is the first page."""
    parts: list[dict[str, Any]] = [PUBLISHED]
    if q.district_id:
        parts.append({"district_id": q.district_id})
    if q.merchant_id:
        parts.append({"merchant_id": q.merchant_id})
    if q.festival_id:
        parts.append({"festival_id": q.festival_id})
    # (valid_until, _id) as until_key: filter, cursor and order are one index range (tests/contract)
    ends: dict[str, str] = {}
    if q.active_at is not None:
        parts.append({"valid_from": {"$lte": q.active_at}})
        ends["$gt"] = until_bound(q.active_at) + END
    if q.ending_before is not None:
        ends["$lt"] = until_bound(q.ending_before) + END
    selection = combine(*parts, {"until_key": ends} if ends else {})
    page_ends = dict(ends)
    if after is not None and isinstance(after[0], datetime):
        page_ends["$gt"] = max(page_ends.get("$gt", ""), until_key(after[0], after[1]))
    page_filter = combine(*parts, {"until_key": page_ends} if page_ends else {})
    if after is not None and not isinstance(after[0], datetime):  # another list's cursor: nothing after it
        page_filter = {"_id": {"$in": []}}
    cursor = db.offers.find(page_filter).sort([("until_key", 1)]).limit(first + 1)
    docs = [d async for d in cursor]

    async def count() -> int:
        if q.active_at is None:
            return await count_matching(db.offers, selection)
        # The embedded server's $count stage matches nothing after a $lte on a date (it said "优惠 0" above a
        # row of offers; pinned in tests/contract): count the active window's ids with find() instead.
        return len([d async for d in db.offers.find(selection, {"_id": 1})])

    items = [(Offer.from_doc(d), (d["valid_until"], d["_id"]), None) for d in docs[:first]]
    return Page(items, len(docs) > first, count)


async def active_by_merchants(db: AsyncDatabase[Doc], merchant_ids: list[str], at: datetime) -> dict[str, list[Offer]]:
    """Point reads: the page's merchants' offer lists by _id, then their offers active now by _id.  (A query
    on merchant_id cannot be one: nx-27017 answers `$in` on any field but _id by reading every offer.)"""
    wanted = [o["_id"] async for d in db.offers_by_merchant.find({"_id": {"$in": merchant_ids}})
              for o in d["offers"] if o["valid_from"] <= at < o["valid_until"]]
    out: dict[str, list[Offer]] = defaultdict(list)
    if not wanted:
        return out
    # status and validity are checked again on the offer itself: a list behind a write can only miss
    query = combine(PUBLISHED, {"_id": {"$in": wanted}}, active_filter(at))
    docs = sorted([d async for d in db.offers.find(query)], key=lambda d: (d["valid_until"], d["_id"]))
    for doc in docs:
        out[doc["merchant_id"]].append(Offer.from_doc(doc))
    return out


def _listed(doc: Doc) -> Doc:
    return {"_id": doc["_id"], "valid_from": doc["valid_from"], "valid_until": doc["valid_until"]}


async def refresh_by_merchant(db: AsyncDatabase[Doc], merchant_ids: list[str]) -> None:
    """Rewrite these merchants' lists of published offers from the offers themselves (after any write of
    an offer: publish, withdraw, dates, stock)."""
    found: dict[str, list[Doc]] = {m: [] for m in merchant_ids}
    async for doc in db.offers.find(combine(PUBLISHED, {"merchant_id": {"$in": merchant_ids}}),
                                    {"merchant_id": 1, "valid_from": 1, "valid_until": 1}):
        found[doc["merchant_id"]].append(_listed(doc))
    ops = [ReplaceOne({"_id": m}, {"_id": m, "offers": listed}, upsert=True) for m, listed in found.items()]
    if ops:
        await db.offers_by_merchant.bulk_write(ops, ordered=False)


async def add_missing_until_keys(db: AsyncDatabase[Doc]) -> None:
    """Offers written before until_key existed (the back office's; the loader rewrites its own) get it."""
    async for doc in db.offers.find({"until_key": {"$exists": False}}, {"valid_until": 1}):
        await db.offers.update_one({"_id": doc["_id"]},
                                   {"$set": {"until_key": until_key(doc["valid_until"], doc["_id"])}})


async def rebuild_by_merchant(db: AsyncDatabase[Doc]) -> None:
    """Every merchant's list of published offers, from the offers (the content loader, after it wrote offers).

    Only the lists that differ from the stored ones are written, and those of merchants without a published
    offer deleted after: a reader during a reload never finds a merchant's list missing (it was deleted
    whole, then written again), and a reload that changed one offer writes one list, not every merchant's."""
    found: dict[str, list[Doc]] = defaultdict(list)
    async for doc in db.offers.find(PUBLISHED, {"merchant_id": 1, "valid_from": 1, "valid_until": 1}):
        found[doc["merchant_id"]].append(_listed(doc))
    stored = {d["_id"]: d.get("offers") async for d in db.offers_by_merchant.find({})}
    ops: list[InsertOne[Doc] | ReplaceOne[Doc]] = [
        # an insert costs nx-27017 less than an upsert (no lookup first); nobody else inserts these but
        # another loader, whose insert of the same list is then the one kept
        InsertOne({"_id": m, "offers": listed}) if m not in stored
        else ReplaceOne({"_id": m}, {"_id": m, "offers": listed}, upsert=True)
        for m, listed in sorted(found.items()) if stored.get(m) != listed]
    for start in range(0, len(ops), 5000):
        try:
            await db.offers_by_merchant.bulk_write(ops[start:start + 5000], ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
    gone = [m for m in stored if m not in found]
    for start in range(0, len(gone), 5000):
        await db.offers_by_merchant.delete_many({"_id": {"$in": gone[start:start + 5000]}})


async def by_festivals(db: AsyncDatabase[Doc], festival_ids: list[str]) -> dict[str, list[Offer]]:
    out: dict[str, list[Offer]] = defaultdict(list)
    query = combine(PUBLISHED, {"festival_id": {"$in": festival_ids}})
    async for doc in db.offers.find(query).sort([("valid_until", 1), ("_id", 1)]):
        out[doc["festival_id"]].append(Offer.from_doc(doc))
    return out


async def by_ids(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, Offer]:
    return {d["_id"]: Offer.from_doc(d) async for d in db.offers.find(combine(PUBLISHED, {"_id": {"$in": ids}}))}


async def merchants_with_active_offer(db: AsyncDatabase[Doc], at: datetime) -> list[str]:
    ids: list[str] = await db.offers.distinct("merchant_id", combine(PUBLISHED, active_filter(at)))
    return ids


async def offer_doc(db: AsyncDatabase[Doc], offer_id: str) -> Doc | None:
    return await db.offers.find_one({"_id": offer_id})


async def insert_offer(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.offers.insert_one({**doc, "until_key": until_key(doc["valid_until"], doc["_id"])})
    await refresh_by_merchant(db, [doc["merchant_id"]])


async def save_offer(db: AsyncDatabase[Doc], before: Doc, version: int, changes: Doc) -> Doc:
    valid_until: datetime = changes.get("valid_until") or before["valid_until"]
    changes = {**changes, "until_key": until_key(valid_until, before["_id"])}
    after = await versioned.save(db.offers, before, version, changes)
    await refresh_by_merchant(db, sorted({before["merchant_id"], after["merchant_id"]}))
    return after


async def of_merchant(db: AsyncDatabase[Doc], merchant_id: str) -> list[Offer]:
    """Every offer of a shop, drafts included, latest ending first."""
    cursor = db.offers.find({"merchant_id": merchant_id}).sort([("valid_until", -1), ("_id", 1)])
    return [Offer.from_doc(d) async for d in cursor]


async def count_interaction(db: AsyncDatabase[Doc], offer_id: str, kind: str, at: datetime) -> bool:
    """One more view or save of a published offer, on the offer and on its Shenzhen day; False when there is no
    such published offer.  The offer's update returns what the day's document is filed under (no second read)."""
    where = await db.offers.find_one_and_update({"_id": offer_id, "status": "published"}, {"$inc": {kind: 1}},
                                                dict.fromkeys(FILED_UNDER, 1))
    if where is None:
        return False
    await _bump_day(db, where, kind, at, 1)
    return True


async def take_one(db: AsyncDatabase[Doc], offer: Offer, at: datetime) -> Offer | None:
    """One coupon of a published offer valid at `at` is claimed: stock (when the offer has one) goes down by
    one only while it is above zero, in the same update that counts the claim, so concurrent claims can
    never take it below zero. None when the offer is out of stock, no longer published or no longer valid."""
    query: dict[str, Any] = combine(PUBLISHED, {"_id": offer.id}, active_filter(at))
    change: dict[str, int] = {"claims": 1}
    if offer.stock is not None:
        query = combine(query, {"stock": {"$gt": 0}})
        change["stock"] = -1
    doc = await db.offers.find_one_and_update(query, {"$inc": change}, {"_id": 1})
    # read back rather than ReturnDocument.AFTER: the embedded server returns its dates as strings there
    return None if doc is None else Offer.from_doc(await db.offers.find_one({"_id": offer.id}) or doc)


async def count_redemption(db: AsyncDatabase[Doc], offer_id: str) -> None:
    await db.offers.update_one({"_id": offer_id}, {"$inc": {"redemptions": 1}})


# what an offer's daily counters are filed under, besides the offer and the day
FILED_UNDER = ("merchant_id", "district_id", "festival_id")


async def bump_daily(db: AsyncDatabase[Doc], offer: Offer, field: str, at: datetime, by: int = 1) -> None:
    """One more view, save, claim or redemption of an offer on its Shenzhen day (an upserted counter, so
    concurrent bumps never lose one)."""
    where = {"_id": offer.id, "merchant_id": offer.merchant_id, "district_id": offer.district_id,
             "festival_id": offer.festival_id}
    await _bump_day(db, where, field, at, by)


async def _bump_day(db: AsyncDatabase[Doc], offer: Doc, field: str, at: datetime, by: int) -> None:
    """`offer`: its _id and FILED_UNDER fields."""
    if field not in FUNNEL:
        raise ValueError(f"unknown offer counter {field!r}")
    day = day_of(at)
    await db.offer_stats_daily.update_one(
        {"_id": f"{offer['_id']}:{day}"},
        {"$inc": {field: by},
         "$setOnInsert": {"offer_id": offer["_id"], **{name: offer.get(name) for name in FILED_UNDER}, "day": day}},
        upsert=True)


async def daily_stats(db: AsyncDatabase[Doc], offer_ids: list[str], days: list[str]) -> list[DayStats]:
    """The counters of these offers on these days (days with no document are absent), by offer then day."""
    if not offer_ids or not days:
        return []
    ids = [f"{o}:{d}" for o in offer_ids for d in days]
    cursor = db.offer_stats_daily.find({"_id": {"$in": ids}})
    found = [DayStats.from_doc(d) async for d in cursor]
    return sorted(found, key=lambda s: (s.offer_id, s.day))


async def daily_stats_of_merchant(db: AsyncDatabase[Doc], merchant_id: str, first_day: str,
                                  last_day: str) -> list[DayStats]:
    """A shop's counters from first_day to last_day (ISO days, inclusive), by offer then day."""
    query = {"merchant_id": merchant_id, "day": {"$gte": first_day, "$lte": last_day}}
    found = [DayStats.from_doc(d) async for d in db.offer_stats_daily.find(query)]
    return sorted(found, key=lambda s: (s.offer_id, s.day))


async def daily_stats_of_festival(db: AsyncDatabase[Doc], festival_id: str, district_id: str) -> list[DayStats]:
    """Every counter of a festival's offers in one district (a festival can span districts)."""
    query = {"festival_id": festival_id, "district_id": district_id}
    found = [DayStats.from_doc(d) async for d in db.offer_stats_daily.find(query)]
    return sorted(found, key=lambda s: (s.offer_id, s.day))


async def offers_by_ids(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, Offer]:
    """Offers by id whatever their status: a withdrawn offer still has its counters to show."""
    return {d["_id"]: Offer.from_doc(d) async for d in db.offers.find({"_id": {"$in": ids}})}
