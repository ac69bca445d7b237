"""Coupon codes and claimed coupons: the rules, no I/O.

A code is 9 random symbols and 1 check symbol from a 31-symbol alphabet (Crockford's base32 without Z, so
the check works modulo the prime 31), shown as two groups of five: `7KQ3M-XW2PD`. 9 × log2(31) ≈ 44.6 bits
come from `secrets`, so guessing a code among even a million claimed ones takes ~2^25 tries, and the rate
limit on failed attempts stops that long before.

The check makes Σ (i × value_i) ≡ 0 (mod 31) over the ten positions i = 1…10. Every weight is non-zero mod
31 and neighbouring weights differ by 1, so any one mistyped symbol and any swap of two neighbours changes
the sum by a non-zero amount and is caught before the database is asked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.domain.errors import DomainError
from server.domain.i18n import pick
from server.domain.messages import translate
from server.domain.offers.stats import SHENZHEN

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"  # Crockford base32 without Z: 31 symbols, a prime count
MOD = len(ALPHABET)
DATA_LENGTH = 9
LENGTH = DATA_LENGTH + 1
VALUE = {symbol: n for n, symbol in enumerate(ALPHABET)}
# What people type for what they read: Crockford's O → 0 and I/L → 1, lower case, spaces and hyphens.
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1", " ": None, "-": None, "\t": None, "_": None})

CLAIMED, REDEEMED = "claimed", "redeemed"
MAX_PER_DEVICE = 20


def _check_symbol(data: str) -> str:
    total = sum((i + 1) * VALUE[ch] for i, ch in enumerate(data))
    # solve total + LENGTH × c ≡ 0 (mod 31); pow(…, -1, MOD) is LENGTH's inverse modulo the prime
    return ALPHABET[(-total * pow(LENGTH, -1, MOD)) % MOD]


def new_code() -> str:
    data = "".join(secrets.choice(ALPHABET) for _ in range(DATA_LENGTH))
    return data + _check_symbol(data)


def normalise(typed: str) -> str:
    """What someone typed or a scanner read, in the stored form (upper case, no separators)."""
    return typed.strip().upper().translate(_READS_AS)[:64]


def problem(code: str) -> str | None:
    """Why a normalised code cannot be one of ours: "malformed" (length or symbols), "check" (a typo the
    check symbol caught), or None when it could be."""
    if len(code) != LENGTH or any(ch not in VALUE for ch in code):
        return "malformed"
    if sum((i + 1) * VALUE[ch] for i, ch in enumerate(code)) % MOD:
        return "check"
    return None


def display(code: str) -> str:
    """Two groups of five, as printed and read aloud."""
    return f"{code[:5]}-{code[5:]}"


def device_hash(key: str) -> str | None:
    """What is stored of a device key (the PWA's random id, crypto.randomUUID or longer: 16–100 safe
    characters): its SHA-256, so the stored coupons do not hand out the keys that list them. None when
    the key is not one."""
    if not 16 <= len(key) <= 100 or not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in key):
        return None
    return hashlib.sha256(key.encode()).hexdigest()


class CouponError(DomainError):
    """A claim or redemption the rules refuse; `key` is its message in server/domain/messages.py, `values`
    fill it (when and where a code was already redeemed)."""

    def __init__(self, code: str, key: str, **values: object) -> None:
        super().__init__(f"{code}: {key}")
        self.code, self.key, self.values = code, key, values

    def describe_value(self, name: str, locale: str) -> object:
        """A value as the reader sees it: times in Shenzhen time, the shop by its name in their locale."""
        value = self.values.get(name)
        if isinstance(value, datetime):
            return value.astimezone(SHENZHEN).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, dict):
            return pick(value, locale)
        return value

    def describe(self, locale: str) -> str:
        return translate(self.key, locale, **{name: self.describe_value(name, locale) for name in self.values})


@dataclass(frozen=True, slots=True)
class Coupon:
    code: str
    offer_id: str
    merchant_id: str
    district_id: str
    claimed_at: datetime
    expires_at: datetime
    state: str = CLAIMED
    redeemed_at: datetime | None = None
    redeemed_by: str | None = None  # the account (actor label) that confirmed it at the counter

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Coupon:
        return cls(code=doc["_id"], offer_id=doc["offer_id"], merchant_id=doc["merchant_id"],
                   district_id=doc["district_id"], claimed_at=doc["claimed_at"], expires_at=doc["expires_at"],
                   state=str(doc.get("state") or CLAIMED),
                   redeemed_at=datetime.fromtimestamp(doc["redeemed_ts"], UTC) if doc.get("redeemed_ts") else None,
                   redeemed_by=doc.get("redeemed_by"))

    def expired_at(self, at: datetime) -> bool:
        return self.state == CLAIMED and at >= self.expires_at
