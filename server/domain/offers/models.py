from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from server.domain.i18n import Localized

KINDS = ("percent_off", "amount_off", "gift", "bundle")
STATUSES = ("draft", "published", "withdrawn")


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    merchant_id: str
    district_id: str
    festival_id: str | None
    title: Localized
    description: Localized
    kind: str
    percent_off: int | None
    amount_off_fen: int | None
    min_spend_fen: int | None
    coupon_code: str | None
    valid_from: datetime
    valid_until: datetime
    stock: int | None
    status: str = "published"
    version: int = 0
    festival_decision: str = "none"  # featured | rejected | none, set by the festival's operator
    views: int = 0
    saves: int = 0
    claims: int = 0
    redemptions: int = 0
    per_device: int = 1  # coupons one device may claim of this offer

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Offer:
        def opt_int(name: str) -> int | None:
            value = doc.get(name)
            return None if value is None else int(value)

        kind = str(doc["kind"])
        if kind not in KINDS:
            raise ValueError(f"offer {doc['_id']}: unknown kind {kind!r}")
        return cls(
            id=doc["_id"], merchant_id=doc["merchant_id"], district_id=doc["district_id"],
            festival_id=doc.get("festival_id"), title=doc["title"], description=doc.get("description") or {},
            kind=kind, percent_off=opt_int("percent_off"), amount_off_fen=opt_int("amount_off_fen"),
            min_spend_fen=opt_int("min_spend_fen"), coupon_code=doc.get("coupon_code"),
            valid_from=doc["valid_from"], valid_until=doc["valid_until"], stock=opt_int("stock"),
            status=str(doc.get("status", "published")), version=int(doc.get("version") or 0),
            festival_decision=str(doc.get("festival_decision") or "none"), views=int(doc.get("views") or 0),
            saves=int(doc.get("saves") or 0), claims=int(doc.get("claims") or 0),
            redemptions=int(doc.get("redemptions") or 0), per_device=max(1, int(doc.get("per_device") or 1)),
        )

    def active_at(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_until


# What shoppers change on a stored offer after it is written ($inc of counters, claims taking stock): a reload
# of a changed content record keeps them (reseeded).
SHOPPER_FIELDS = ("views", "saves", "claims", "redemptions", "stock")


def reseeded(record: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """A content record's offer written again over the stored one: the record's fields, the counters as shoppers
    left them, and of the record's stock (how many coupons the offer gives out in all; none: no limit) what the
    coupons claimed so far leave.  Every claim takes one of stock and adds one to claims in the same update
    (offers/repository.take_one), so the stock left is the record's less `claims`."""
    kept = {name: stored[name] for name in SHOPPER_FIELDS if name in stored}
    stock = record.get("stock")
    left = None if stock is None else max(0, int(stock) - int(stored.get("claims") or 0))
    return {**record, **kept, "stock": left}


def until_key(at: datetime, offer_id: str) -> str:
    """An offer's place in the order of ends, (valid_until, _id), as one string: nx-27017 compares dates through
    SQLite's datetime(), which no index serves, and sorts on two fields in a temporary B-tree, while a range
    on one indexed string is an index range in order.  A space sorts below any character of an id."""
    return f"{until_bound(at)} {offer_id}"


def until_bound(at: datetime) -> str:
    """Milliseconds since 1970 (as MongoDB keeps dates), 13 digits: nx-27017 would take an ISO string for a
    date and compare it through datetime() again.  `until_key > until_bound(t) + END` means valid_until > t."""
    return f"{(at - EPOCH) // timedelta(milliseconds=1):013d}"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# above any id's characters (compared as UTF-8 bytes, by MongoDB and SQLite alike)
END = "\uffff"
