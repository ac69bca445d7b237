"""Names of what a public answer depends on, so a write can say what it changed.

A cached public read (server/api/cached_reads.py) is valid while the versions of its tags
are the ones it was stored with; an application service names the tags its write touched
(server/services/freshness.py bumps them). Tags are coarse on purpose: a district, a
merchant, or one of a few shared catalogues. Shopper reads during a festival are mostly of
single districts and merchants, and back-office writes are rare next to them, so a write
that invalidates a little more than it strictly changed costs one extra miss, while a write
that forgets a tag shows a stale page: when unsure, name more.
"""

from __future__ import annotations

from collections.abc import Iterable

EVERYTHING = "all"  # every cached answer: content loads, restores
ANY_WRITE = "any"  # the city-wide lists (home, search, festivals, products), which any write but an offer's can change
# City-wide answers that show offers whatever merchants they list (home's ending soon, festivals' offers) or choose
# merchants by them (has an active offer). An offer write bumps this, its merchant and its district, never ANY_WRITE:
# an operator editing offers every few seconds would otherwise outdate every list of the city each time. Lists that
# show the offers of the merchants they list (near me, search's '查看全部') are tagged with those merchants as well
# (server/api/cached_reads.py), so an edit outdates only the lists its merchant is on.
OFFERS = "offers"
FESTIVALS = "festivals"
PRODUCTS = "products"  # shared 深圳手信 names and stories
INBOX = "inbox"  # campaign messages: a campaign stored to send, approved or cancelled


def district(district_id: str) -> str:
    return f"d:{district_id}"


def merchant(merchant_id: str) -> str:
    return f"m:{merchant_id}"


def of_merchant(merchant_id: str, district_id: str) -> tuple[str, ...]:
    """A merchant's own data (profile, hours, offers, what it sells): its page, its district, the lists."""
    return merchant(merchant_id), district(district_id), ANY_WRITE


def of_offer(merchant_id: str, district_id: str) -> tuple[str, ...]:
    """An offer: its merchant's page, its district's pages, and the city-wide lists of offers (OFFERS above)."""
    return merchant(merchant_id), district(district_id), OFFERS


def of_districts(district_ids: Iterable[str]) -> tuple[str, ...]:
    return (*(district(d) for d in sorted(set(district_ids))), ANY_WRITE)
