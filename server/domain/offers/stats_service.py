"""Reading the offer funnel (views → saves → claims → redemptions per Shenzhen day), with who may read it:
a merchant its own shops' offers, an operator the offers of its districts, an admin every offer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz
from server.domain.actor import Actor
from server.domain.errors import Invalid, NotFound
from server.domain.merchants.repository import district_of_merchant
from server.domain.offers import repository
from server.domain.offers.models import Offer
from server.domain.offers.stats import FUNNEL, DayStats, days_back
from server.services.mongo import Doc

MAX_DAYS = 90  # a quarter: long enough for a festival season, short enough to read in one go
DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class OfferSeries:
    """One offer's counters, one entry per day of the window (zeros where nothing happened)."""

    offer: Offer
    days: list[DayStats]

    def total(self, field: str) -> int:
        if field not in FUNNEL:
            raise ValueError(field)
        return sum(getattr(d, field) for d in self.days)

    def totals(self) -> dict[str, int]:
        return {field: self.total(field) for field in FUNNEL}


def _window(days: int, now: datetime) -> list[str]:
    if not 1 <= days <= MAX_DAYS:
        raise Invalid({"days": "out_of_range"})
    return days_back(now, days)


def _filled(offer: Offer, found: list[DayStats], window: list[str]) -> OfferSeries:
    by_day = {s.day.isoformat(): s for s in found if s.offer_id == offer.id}
    return OfferSeries(offer, [by_day.get(d) or DayStats(offer.id, date.fromisoformat(d)) for d in window])


async def of_offer(db: AsyncDatabase[Doc], actor: Actor, offer_id: str, days: int, now: datetime) -> OfferSeries:
    offer = (await repository.offers_by_ids(db, [offer_id])).get(offer_id)
    if offer is None:
        raise NotFound(f"no offer {offer_id!r}")
    authz.merchant_owner(actor, offer.merchant_id, offer.district_id, "offers")
    window = _window(days, now)
    return _filled(offer, await repository.daily_stats(db, [offer.id], window), window)


async def of_merchant(db: AsyncDatabase[Doc], actor: Actor, merchant_id: str, days: int,
                      now: datetime) -> list[OfferSeries]:
    """Every offer of a shop (drafts and withdrawn ones too), latest ending first."""
    district_id = await district_of_merchant(db, merchant_id)
    if district_id is None:
        raise NotFound(f"no merchant {merchant_id!r}")
    authz.merchant_owner(actor, merchant_id, district_id, "offers")
    window = _window(days, now)
    found = await repository.daily_stats_of_merchant(db, merchant_id, window[0], window[-1])
    return [_filled(offer, found, window) for offer in await repository.of_merchant(db, merchant_id)]


async def festival_totals(db: AsyncDatabase[Doc], actor: Actor, festival_id: str,
                          district_id: str) -> list[tuple[Offer, dict[str, int]]]:
    """A festival's offers in one district with their counters summed, most claimed first."""
    authz.district_operator(actor, [district_id], "districts")
    totals: dict[str, dict[str, int]] = {}
    for s in await repository.daily_stats_of_festival(db, festival_id, district_id):
        row = totals.setdefault(s.offer_id, dict.fromkeys(FUNNEL, 0))
        for field in FUNNEL:
            row[field] += getattr(s, field)
    offers = await repository.by_festivals(db, [festival_id])
    for offer in offers.get(festival_id, []):
        if offer.district_id == district_id:
            totals.setdefault(offer.id, dict.fromkeys(FUNNEL, 0))
    known = await repository.offers_by_ids(db, sorted(totals))
    rows = [(known[i], t) for i, t in totals.items() if i in known]
    return sorted(rows, key=lambda r: (-r[1]["claims"], -r[1]["redemptions"], r[0].id))
