"""The MongoDB queries on delivery records (collection `push_deliveries`, `_id` = "<campaign>:<subscription>"):
every read and write the fan-out makes on them, and on what a send needs of subscriptions and campaign counters.

Records are written whole on insert; later changes are compare-and-sets on `version` with `$set`s of strings
and numbers only (times are epoch seconds), so nx-27017 never stores a datetime as a string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any, Final

from pymongo import UpdateMany
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from server.domain.push.campaign import COLLECTION as CAMPAIGNS
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.domain.push.models import DELIVERIES, WAITING
from server.services.mongo import Doc

# Delivery record states: "sending" (claimed), "retry" and "deferred" are picked up again by the sweeper.
CLAIMED, RETRY, DEFERRED = WAITING
SUB_FIELDS: Final = {"endpoint": 1, "keys": 1, "locale": 1, "origin": 1}  # what a send needs of a subscription


def delivery_id(campaign_id: str, subscription_id: str) -> str:
    return f"{campaign_id}:{subscription_id}"


class Deliveries:
    """One database's delivery records, subscriptions-to-send and campaign counters."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    async def claim(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the records; those whose _id exists already are someone else's and are left out."""
        if not records:
            return []
        try:
            await self.db[DELIVERIES].insert_many(records, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(int(e.get("code", 0)) != 11000 for e in errors):
                raise
            taken = {int(e["index"]) for e in errors}
            return [r for i, r in enumerate(records) if i not in taken]
        return records

    async def renew(self, record_id: str, version: int, due: float) -> bool:
        """Push a claim's staleness out (compare-and-set, so a takeover wins or loses whole)."""
        renewed = await self.db[DELIVERIES].update_one(
            {"_id": record_id, "version": version, "state": CLAIMED},
            {"$set": {"due": due}, "$inc": {"version": 1}})
        return renewed.modified_count == 1

    async def write_outcomes(self, changes: Sequence[tuple[Sequence[str], int, dict[str, Any]]], token: str,
                             ) -> set[str]:
        """Compare-and-set: each (ids, version, change) gives `change` to those of `ids` still at `version`, all
        in one bulk write; returns the ids whose write won.  A group of outcomes is mostly one change ("delivered"
        at version 1), so this is one update of many records, not one update per record."""
        ops = [UpdateMany({"_id": {"$in": list(ids)}, "version": version}, change) for ids, version, change in changes]
        written = await self.db[DELIVERIES].bulk_write(ops, ordered=False)
        ids = [record_id for group, _, _ in changes for record_id in group]
        if written.modified_count == len(ids):
            return set(ids)
        # someone took some over: find which writes are ours
        return {str(d["_id"]) async for d in self.db[DELIVERIES].find({"_id": {"$in": ids}, "write": token},
                                                                       {"_id": 1})}

    async def due_ids(self, now: float, limit: int) -> list[str]:
        """Waiting records whose time has come: one read per waiting state, each on the (state, due) index,
        taken in turns across the states, so a backlog in one state (a killed worker's stale claims, say)
        cannot starve the others' retries and deferred messages.

        `state: {$eq}` rather than `state: {$in}` or a bare value: nx-27017 reads those as "the field or an
        element of it" and checks every record (every delivered one too: 0.15 s a sweep at 50,000 records,
        twice a second with two workers), while `$eq` is its plain indexed equality; MongoDB reads all three
        the same."""
        per_state: list[list[str]] = []
        for state in WAITING:
            query = {"state": {"$eq": state}, "due": {"$lte": now}}
            cursor = self.db[DELIVERIES].find(query, {"_id": 1}).limit(limit)
            per_state.append([str(d["_id"]) async for d in cursor])
        turns = zip_longest(*per_state)
        return [record_id for turn in turns for record_id in turn if record_id is not None][:limit]

    async def lease(self, ids: list[str], now: float, *, by: str, lease: str, stale_after: float,
                    ) -> list[dict[str, Any]]:
        """Take over the records among `ids` still due, stamped with `lease`; returns those this call took."""
        query = {"state": {"$in": list(WAITING)}, "due": {"$lte": now}}
        await self.db[DELIVERIES].update_many(
            {"_id": {"$in": ids}, **query},
            {"$set": {"state": CLAIMED, "by": by, "lease": lease, "due": now + stale_after}, "$inc": {"version": 1}})
        return [r async for r in self.db[DELIVERIES].find({"_id": {"$in": ids}, "lease": lease})]

    async def subscriptions(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        cursor = self.db[SUBSCRIPTIONS].find({"_id": {"$in": list(ids)}}, SUB_FIELDS)
        return {str(d["_id"]): d async for d in cursor}

    async def forget_subscriptions(self, ids: Sequence[str]) -> None:
        """The push service said these endpoints are gone (404/410)."""
        if ids:
            await self.db[SUBSCRIPTIONS].delete_many({"_id": {"$in": list(ids)}})

    async def add_to_counters(self, campaign_id: str, counters: Mapping[str, int]) -> None:
        if counters:
            await self.db[CAMPAIGNS].update_one(
                {"_id": campaign_id}, {"$inc": {f"stats.{name}": n for name, n in counters.items()}})

    async def any_waiting(self, campaign_id: str) -> bool:
        found = await self.db[DELIVERIES].find_one({"campaign_id": campaign_id, "state": {"$in": list(WAITING)}},
                                                    {"_id": 1})
        return found is not None

    async def tally(self, campaign_id: str) -> tuple[dict[str, int], int, float]:
        """(records per state, how many were POSTed, the newest write's time) for one campaign."""
        states: dict[str, int] = {}
        posted = 0
        newest = 0.0
        async for record in self.db[DELIVERIES].find({"campaign_id": campaign_id}, {"state": 1, "posted": 1, "at": 1}):
            states[str(record.get("state"))] = states.get(str(record.get("state")), 0) + 1
            posted += 1 if record.get("posted") else 0
            newest = max(newest, float(record.get("at") or 0))
        return states, posted, newest


async def delivery_counts(db: AsyncDatabase[Doc], campaign_id: str) -> dict[str, int]:
    """Records per state, counted from the records themselves (the authoritative, slower twin of `stats`)."""
    states, _, _ = await Deliveries(db).tally(campaign_id)
    return states
