"""VAPID (RFC 8292): one key pair for every process, and cached per-origin Authorization headers."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.domain.push.endpoints import VapidError, b64url, b64url_decode, origin_of
from server.services.mongo import Doc
from server.settings import Settings

__all__ = ["META_ID", "RENEW_BEFORE", "TOKEN_LIFETIME", "VapidKeys", "VapidSigner", "check_subject",
           "keys_for_settings", "load_or_create_keys"]

TOKEN_LIFETIME = 12 * 3600  # RFC 8292 allows at most 24 h
RENEW_BEFORE = 3600  # a token with less than this left is replaced
META_ID = "vapid"
_SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)$", re.IGNORECASE)


def check_subject(subject: str) -> str:
    """The contact a push service may use: a mailto: or https: URL."""
    if not _SUBJECT.match(subject.strip()):
        raise VapidError(f"VAPID subject must be a mailto: or https: URL, got {subject!r}")
    return subject.strip()


@dataclass(frozen=True, slots=True)
class VapidKeys:
    private_key: ec.EllipticCurvePrivateKey
    private_b64: str  # the raw 32-byte scalar, base64url
    public_b64: str  # the uncompressed 65-byte point, base64url: applicationServerKey for the PWA

    @classmethod
    def from_private(cls, private_key: ec.EllipticCurvePrivateKey) -> VapidKeys:
        raw = private_key.private_numbers().private_value.to_bytes(32, "big")
        public = private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                       serialization.PublicFormat.UncompressedPoint)
        return cls(private_key, b64url(raw), b64url(public))

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls.from_private(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_b64(cls, private_b64: str, public_b64: str = "") -> VapidKeys:
        """Keys from settings; the public key, when given, must belong to the private one."""
        try:
            raw = b64url_decode(private_b64.strip())
            if len(raw) != 32:
                raise ValueError("the private key must be 32 bytes")
            keys = cls.from_private(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))
        except ValueError as exc:
            raise VapidError(f"VAPID private key is not a raw base64url P-256 key: {exc}") from None
        if public_b64 and public_b64.strip().rstrip("=") != keys.public_b64:
            raise VapidError("VAPID public key does not match the private key")
        return keys


async def load_or_create_keys(db: AsyncDatabase[Doc], private_b64: str = "", public_b64: str = "") -> VapidKeys:
    """The configured keys, else the pair the first process stored in `meta` (generated once)."""
    if private_b64:
        return VapidKeys.from_b64(private_b64, public_b64)
    try:
        fresh = VapidKeys.generate()
        await db.meta.insert_one({"_id": META_ID, "private_key": fresh.private_b64, "public_key": fresh.public_b64})
    except DuplicateKeyError:
        pass
    doc: dict[str, Any] | None = await db.meta.find_one({"_id": META_ID})
    if doc is None:
        raise VapidError("VAPID keys vanished from the meta collection")
    return VapidKeys.from_b64(str(doc["private_key"]), str(doc["public_key"]))


class VapidSigner:
    """`Authorization: vapid t=…,k=…` per push-service origin, signed once and reused until close to expiry."""

    def __init__(self, keys: VapidKeys, subject: str, *, lifetime: int = TOKEN_LIFETIME,
                 renew_before: int = RENEW_BEFORE, clock: Callable[[], float] = time.time) -> None:
        if not 0 < renew_before < lifetime <= 24 * 3600:
            raise VapidError("need 0 < renew_before < lifetime <= 24 h")
        self.keys = keys
        self.subject = check_subject(subject)
        self._vapid = Vapid02(keys.private_key, conf={"no-strict": True})  # the subject is checked above
        self._lifetime = lifetime
        self._renew_before = renew_before
        self._clock = clock
        self._cache: dict[str, tuple[int, str]] = {}
        self.signed = 0  # how many tokens were signed (the rest came from the cache)

    def header(self, endpoint: str) -> str:
        return self.header_for_origin(origin_of(endpoint))

    def header_for_origin(self, origin: str) -> str:
        now = int(self._clock())
        cached = self._cache.get(origin)
        if cached is not None and cached[0] - now > self._renew_before:
            return cached[1]
        expires = now + self._lifetime
        # py_vapid writes into the claims it is given: a fresh dict every time.
        claims = {"aud": origin, "exp": expires, "sub": self.subject}
        signed = cast(dict[str, str], self._vapid.sign(claims))
        header = signed["Authorization"]
        self._cache[origin] = (expires, header)
        self.signed += 1
        return header


_process_keys: dict[tuple[str, str], VapidKeys] = {}


async def keys_for_settings(db: AsyncDatabase[Doc], settings: Settings) -> VapidKeys:
    """This process's keys (read once): settings' vapid_private_key/vapid_public_key, else the stored pair."""
    private = settings.vapid_private_key
    public = settings.vapid_public_key
    cache_key = (db.name, private)
    keys = _process_keys.get(cache_key)
    if keys is None:
        keys = _process_keys[cache_key] = await load_or_create_keys(db, private, public)
    return keys
