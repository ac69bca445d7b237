from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from server.domain.errors import Invalid, NotFound, RateLimited
from server.domain.push import subscriptions as subs
from server.domain.push.models import COLLECTION, subscription_id
from server.domain.push.subscriptions import Preferences, SubscriptionInput
from server.push.hosts import HostGuard
from server.push.vapid import VapidKeys
from tests.push.push_service import b64e

NOW = datetime(2025, 2, 1, 4, 0, tzinfo=UTC)
ENDPOINT = "https://142.250.72.10/fcm/send/abc"


async def public_resolve(host: str, port: int) -> list[str]:
    return {"fcm.googleapis.com": ["142.250.72.10"], "internal.example": ["10.2.3.4"]}[host]


GUARD = HostGuard(resolve=public_resolve)


def browser_keys() -> tuple[str, str]:
    return VapidKeys.generate().public_b64, b64e(os.urandom(16))


def data(endpoint: str = ENDPOINT, p256dh: str | None = None, auth: str | None = None,
         districts: list[str] | None = None, topics: list[str] | None = None, locale: str | None = None
         ) -> SubscriptionInput:
    key, secret = browser_keys()
    return SubscriptionInput(endpoint, key if p256dh is None else p256dh, secret if auth is None else auth,
                             Preferences(["huaqiangbei"] if districts is None else districts,
                                         ["festivals"] if topics is None else topics, locale))


async def problems(db: Any, redis: Redis, item: SubscriptionInput, guard: HostGuard = GUARD) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        await subs.subscribe(db, redis, guard, item, client=os.urandom(4).hex(), default_locale="zh-CN", now=NOW)
    return caught.value.fields


async def test_subscribe_stores_normalized_document(db: Any, redis: Redis) -> None:
    key, secret = browser_keys()
    item = data(p256dh=key + "=", auth=secret + "==", districts=["dongmen", "huaqiangbei", "dongmen"],
                topics=["offers", "crowd_alerts"], locale="zh-hk")
    sub = await subs.subscribe(db, redis, GUARD, item, client="1.2.3.4", default_locale="zh-CN", now=NOW)
    doc = await db[COLLECTION].find_one({"_id": subscription_id(ENDPOINT)})
    assert doc["endpoint"] == ENDPOINT and doc["keys"] == {"p256dh": key, "auth": secret}
    assert doc["origin"] == "https://142.250.72.10"
    assert doc["districts"] == ["dongmen", "huaqiangbei"] and doc["topics"] == ["crowd_alerts", "offers"]
    assert doc["locale"] == "zh-HK" and sub.locale == "zh-HK"
    # a hostname that resolves to a public address is fine
    await subs.subscribe(db, redis, GUARD, data("https://fcm.googleapis.com/fcm/send/x"), client="1.2.3.4",
                         default_locale="en", now=NOW)


async def test_resubscribe_updates_never_duplicates(db: Any, redis: Redis) -> None:
    first = await subs.subscribe(db, redis, GUARD, data(), client="1.2.3.5", default_locale="zh-CN", now=NOW)
    later = NOW + timedelta(days=3)
    second = await subs.subscribe(db, redis, GUARD, data(districts=["shekou"], topics=["offers"]),
                                  client="1.2.3.5", default_locale="en", now=later)
    assert await db[COLLECTION].count_documents({}) == 1
    doc = await db[COLLECTION].find_one({})
    assert doc["districts"] == ["shekou"] and doc["keys"]["p256dh"] == second.p256dh != first.p256dh
    assert doc["created_at"] == NOW and doc["updated_at"] == later and doc["locale"] == "en"


async def test_validation_matrix(db: Any, redis: Redis) -> None:
    key, _ = browser_keys()
    from server.domain.push.endpoints import b64url, b64url_decode

    point = bytearray(b64url_decode(key))
    point[-1] ^= 1  # y no longer matches x: off the curve
    off_curve = b64url(bytes(point))
    compressed = b64url(bytes([2]) + bytes(point[1:33]))
    cases: list[tuple[SubscriptionInput, dict[str, str]]] = [
        (data("http://142.250.72.10/x"), {"subscription.endpoint": "push_endpoint_invalid"}),
        (data("ftp://142.250.72.10/x"), {"subscription.endpoint": "push_endpoint_invalid"}),
        (data("not a url"), {"subscription.endpoint": "push_endpoint_invalid"}),
        (data("https://user:pw@142.250.72.10/x"), {"subscription.endpoint": "push_endpoint_invalid"}),
        # a lone surrogate (JSON "\ud800") has no UTF-8 form, so no request line could carry it
        (data("https://142.250.72.10/x\ud800"), {"subscription.endpoint": "push_endpoint_invalid"}),
        (data(""), {"subscription.endpoint": "required"}),
        (data("https://142.250.72.10/" + "a" * 2048), {"subscription.endpoint": "too_long"}),
        (data("https://10.0.0.1/x"), {"subscription.endpoint": "push_endpoint_private"}),
        (data("https://127.0.0.1:8443/x"), {"subscription.endpoint": "push_endpoint_private"}),
        (data("https://169.254.169.254/x"), {"subscription.endpoint": "push_endpoint_private"}),
        (data("https://[::1]/x"), {"subscription.endpoint": "push_endpoint_private"}),
        (data("https://224.0.0.1/x"), {"subscription.endpoint": "push_endpoint_private"}),
        (data("https://internal.example/x"), {"subscription.endpoint": "push_endpoint_private"}),
        (data(p256dh=key[:-4]), {"subscription.keys.p256dh": "push_key_invalid"}),
        (data(p256dh=off_curve), {"subscription.keys.p256dh": "push_key_invalid"}),
        (data(p256dh=compressed), {"subscription.keys.p256dh": "push_key_invalid"}),
        (data(p256dh=key.replace("-", "+").replace("_", "/")) if ("-" in key or "_" in key)
         else data(p256dh="+" + key[1:]), {"subscription.keys.p256dh": "push_key_invalid"}),
        (data(p256dh="A" * 5000), {"subscription.keys.p256dh": "push_key_invalid"}),
        (data(auth=b64e(os.urandom(15))), {"subscription.keys.auth": "push_auth_invalid"}),
        (data(auth=b64e(os.urandom(32))), {"subscription.keys.auth": "push_auth_invalid"}),
        (data(auth="!!!"), {"subscription.keys.auth": "push_auth_invalid"}),
        (data(districts=["huaqiangbei", "atlantis"]), {"districts": "unknown_district"}),
        (data(districts=[]), {"districts": "unknown_district"}),
        (data(districts=[f"d{i}" for i in range(21)]), {"districts": "too_many_districts"}),
        (data(topics=[]), {"topics": "required"}),
        (data(topics=["weather"]), {"topics": "invalid_choice"}),
        (data(locale="fr"), {"locale": "invalid_choice"}),
    ]
    for item, expected in cases:
        assert await problems(db, redis, item) == expected, (item, expected)
    # several problems are reported together
    everything = await problems(db, redis, data("http://10.0.0.1/x", p256dh="AAAA", auth="AAAA", districts=["x"]))
    assert set(everything) == {"subscription.endpoint", "subscription.keys.p256dh", "subscription.keys.auth",
                               "districts"}
    assert await db[COLLECTION].count_documents({}) == 0


async def test_local_push_services_need_allow_local(db: Any, redis: Redis) -> None:
    local = data("http://127.0.0.1:8999/push/x")
    assert await problems(db, redis, local) == {"subscription.endpoint": "push_endpoint_invalid"}
    await subs.subscribe(db, redis, HostGuard(allow_local=True), local, client="1.2.3.9", default_locale="en",
                         now=NOW)
    assert await db[COLLECTION].count_documents({}) == 1


async def test_update_preferences_and_unsubscribe(db: Any, redis: Redis) -> None:
    await subs.subscribe(db, redis, GUARD, data(locale="en"), client="1.2.4.1", default_locale="zh-CN", now=NOW)
    updated = await subs.update_preferences(db, redis, ENDPOINT, Preferences(["shekou", "dongmen"], ["offers"]),
                                            client="1.2.4.1", default_locale="zh-CN", now=NOW)
    assert updated.districts == ("dongmen", "shekou") and updated.topics == ("offers",) and updated.locale == "en"
    doc = await db[COLLECTION].find_one({})
    assert doc["districts"] == ["dongmen", "shekou"] and doc["locale"] == "en"
    with pytest.raises(Invalid) as caught:
        await subs.update_preferences(db, redis, ENDPOINT, Preferences(["nowhere"], ["offers"], "xx"),
                                      client="1.2.4.1", default_locale="zh-CN", now=NOW)
    assert caught.value.fields == {"districts": "unknown_district", "locale": "invalid_choice"}
    with pytest.raises(NotFound):
        await subs.update_preferences(db, redis, ENDPOINT + "/other", Preferences(["shekou"], ["offers"]),
                                      client="1.2.4.1", default_locale="zh-CN", now=NOW)
    assert await subs.unsubscribe(db, redis, ENDPOINT, client="1.2.4.1") is True
    assert await db[COLLECTION].count_documents({}) == 0
    assert await subs.unsubscribe(db, redis, ENDPOINT, client="1.2.4.1") is False


async def test_rate_limited_per_client(db: Any, redis: Redis) -> None:
    client = "rl-" + os.urandom(4).hex()
    for _ in range(subs.RATE_MAX_CALLS):
        await subs.subscribe(db, redis, GUARD, data(), client=client, default_locale="en", now=NOW)
    with pytest.raises(RateLimited) as caught:
        await subs.subscribe(db, redis, GUARD, data(), client=client, default_locale="en", now=NOW)
    assert 0 < caught.value.retry_after <= subs.RATE_WINDOW_SECONDS
    with pytest.raises(RateLimited):
        await subs.unsubscribe(db, redis, ENDPOINT, client=client)
    # another client is not affected
    await subs.subscribe(db, redis, GUARD, data(), client=client + "-other", default_locale="en", now=NOW)
    assert await db[COLLECTION].count_documents({}) == 1
