"""subscribePush / updatePushPreferences / unsubscribePush: strict validation, one document per endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from server.domain.districts import repository as district_repository
from server.domain.errors import NotFound, RateLimited
from server.domain.forms import Problems
from server.domain.i18n import canonical_locale
from server.domain.push import subscription_repository as repository
from server.domain.push.endpoints import b64url, b64url_decode, origin_of
from server.domain.push.hosts import EndpointGuard, UnsafeHost
from server.domain.push.models import TOPICS, PushSubscription, subscription_id
from server.services.mongo import Doc

MAX_ENDPOINT: Final = 2048
MAX_DISTRICTS: Final = 20
RATE_WINDOW_SECONDS: Final = 10 * 60
RATE_MAX_CALLS: Final = 20

# Message keys (server/domain/messages.py MESSAGES) this module raises besides the shared ones.
ENDPOINT_INVALID: Final = "push_endpoint_invalid"
ENDPOINT_PRIVATE: Final = "push_endpoint_private"
KEY_INVALID: Final = "push_key_invalid"
AUTH_INVALID: Final = "push_auth_invalid"
TOO_MANY_DISTRICTS: Final = "too_many_districts"
MESSAGE_KEYS: Final = (ENDPOINT_INVALID, ENDPOINT_PRIVATE, KEY_INVALID, AUTH_INVALID, TOO_MANY_DISTRICTS,
                       "required", "too_long", "unknown_district", "invalid_choice")

F_ENDPOINT: Final = "subscription.endpoint"
F_P256DH: Final = "subscription.keys.p256dh"
F_AUTH: Final = "subscription.keys.auth"


@dataclass(frozen=True, slots=True)
class Preferences:
    districts: list[str]
    topics: list[str]
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionInput:
    endpoint: str
    p256dh: str
    auth: str
    preferences: Preferences = field(default_factory=lambda: Preferences([], []))


async def _check_endpoint(p: Problems, guard: EndpointGuard, endpoint: str) -> str | None:
    if not endpoint:
        p.add(F_ENDPOINT, "required")
        return None
    if len(endpoint) > MAX_ENDPOINT:
        p.add(F_ENDPOINT, "too_long")
        return None
    try:
        endpoint.encode()  # a lone surrogate raises here: no request line could carry it
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises on a bad port
        if not parts.hostname or parts.username is not None or parts.password is not None or \
                any(c.isspace() for c in endpoint):
            raise ValueError("malformed")
        guard.check_scheme(parts.scheme)
        origin = origin_of(endpoint)
    except (UnsafeHost, ValueError):
        p.add(F_ENDPOINT, ENDPOINT_INVALID)
        return None
    try:
        await guard.check_url(endpoint)
    except UnsafeHost:
        p.add(F_ENDPOINT, ENDPOINT_PRIVATE)
        return None
    return origin


def _check_p256dh(p: Problems, value: str) -> str | None:
    try:
        raw = b64url_decode(value) if len(value) <= 100 else b""
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("not an uncompressed point")
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)  # refuses points off the curve
    except ValueError:
        p.add(F_P256DH, KEY_INVALID)
        return None
    return b64url(raw)


def _check_auth(p: Problems, value: str) -> str | None:
    try:
        raw = b64url_decode(value) if len(value) <= 40 else b""
        if len(raw) != 16:
            raise ValueError("auth must be 16 bytes")
    except ValueError:
        p.add(F_AUTH, AUTH_INVALID)
        return None
    return b64url(raw)


async def _check_preferences(db: AsyncDatabase[Doc], p: Problems, prefs: Preferences,
                             default_locale: str) -> tuple[list[str], list[str], str]:
    districts = sorted(set(prefs.districts))
    if len(prefs.districts) > MAX_DISTRICTS:
        p.add("districts", TOO_MANY_DISTRICTS)
    elif not districts:
        p.add("districts", "unknown_district")
    elif len(await district_repository.existing_ids(db, districts)) != len(districts):
        p.add("districts", "unknown_district")
    topics = sorted(set(prefs.topics))
    if not topics:
        p.add("topics", "required")
    elif len(prefs.topics) > len(TOPICS) * 2 or not set(topics) <= set(TOPICS):
        p.add("topics", "invalid_choice")
    locale = canonical_locale(prefs.locale) if prefs.locale and len(prefs.locale) <= 20 else None
    if prefs.locale is not None and locale is None:
        p.add("locale", "invalid_choice")
    return districts, topics, locale or default_locale


async def check_rate(redis: Redis, client: str) -> None:
    """A fixed window per client (IP) shared by the three push mutations; SET NX EX + INCR works on Redis 6."""
    key = f"rl:push:{client}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=RATE_WINDOW_SECONDS, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = await pipe.execute()
    if int(count) > RATE_MAX_CALLS:
        raise RateLimited(max(1, int(ttl)))


async def subscribe(db: AsyncDatabase[Doc], redis: Redis, guard: EndpointGuard, data: SubscriptionInput, *,
                    client: str, default_locale: str, now: datetime) -> PushSubscription:
    """Store (or update) the subscription for `data.endpoint`; the same endpoint never makes a second document."""
    await check_rate(redis, client)
    p = Problems()
    origin = await _check_endpoint(p, guard, data.endpoint)
    p256dh = _check_p256dh(p, data.p256dh)
    auth = _check_auth(p, data.auth)
    districts, topics, locale = await _check_preferences(db, p, data.preferences, default_locale)
    p.raise_if_any()
    assert origin is not None and p256dh is not None and auth is not None
    sub_id = subscription_id(data.endpoint)
    for _ in range(3):
        created = await repository.created_at(db, sub_id) or now
        sub = PushSubscription(sub_id, data.endpoint, p256dh, auth, origin, tuple(districts), tuple(topics), locale,
                               created, now)
        try:
            await repository.put(db, sub)
        except DuplicateKeyError:  # two first subscribes raced; the next round replaces the winner's document
            continue
        return sub
    raise RuntimeError("could not store the push subscription")


async def update_preferences(db: AsyncDatabase[Doc], redis: Redis, endpoint: str, prefs: Preferences, *,
                             client: str, default_locale: str, now: datetime) -> PushSubscription:
    await check_rate(redis, client)
    current = await repository.find(db, subscription_id(endpoint)) if 0 < len(endpoint) <= MAX_ENDPOINT else None
    if current is None:
        raise NotFound("no push subscription for this endpoint")
    p = Problems()
    districts, topics, locale = await _check_preferences(
        db, p, replace(prefs, locale=prefs.locale if prefs.locale is not None else current.locale), default_locale)
    p.raise_if_any()
    after = replace(current, districts=tuple(districts), topics=tuple(topics), locale=locale, updated_at=now)
    await repository.replace(db, after)
    return after


async def unsubscribe(db: AsyncDatabase[Doc], redis: Redis, endpoint: str, *, client: str) -> bool:
    """True when a subscription was removed; unknown endpoints are not an error (unsubscribing is idempotent)."""
    await check_rate(redis, client)
    if not 0 < len(endpoint) <= MAX_ENDPOINT:
        return False
    return await repository.delete(db, subscription_id(endpoint))


async def delete_expired(db: AsyncDatabase[Doc], subscription_id_: str) -> None:
    """What a sender does on 404/410 from the push service."""
    await repository.delete(db, subscription_id_)
