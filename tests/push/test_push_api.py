"""The push mutations and query through a schema built here (the app's schema gets them at wiring time)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import strawberry
from redis.asyncio import Redis

from server.api.context import Context
from server.api.ids import to_global
from server.api.push.mutations import PushMutations
from server.api.push.queries import PushQueries
from server.domain import messages
from server.domain.push import subscriptions as subs
from server.domain.push.models import COLLECTION, PushSubscription
from server.push.encode import encode
from server.push.hosts import HostGuard
from server.push.sender import Outcome, PushSender
from server.push.vapid import VapidKeys
from server.settings import Settings
from tests.push.push_service import PushService, b64e


@strawberry.type
class Query(PushQueries):
    pass


@strawberry.type
class Mutation(PushMutations):
    pass


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)
SUBSCRIBE = """
mutation ($sub: PushSubscriptionInput!, $districts: [ID!]!, $topics: [PushTopic!]!, $locale: String) {
  subscribePush(subscription: $sub, districts: $districts, topics: $topics, locale: $locale) {
    subscription { endpoint districts topics locale }
    errors { field code message }
  }
}"""


async def run(db: Any, redis: Redis, query: str, variables: dict[str, Any] | None = None,
              locale: str = "en") -> dict[str, Any]:
    context = Context(db=db, redis=redis, settings=Settings(), locale=locale, now=datetime.now(UTC),
                      request_id="test")
    result = await SCHEMA.execute(query, variable_values=variables, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


def subscription(endpoint: str = "https://142.250.72.10/fcm/send/api") -> dict[str, Any]:
    return {"endpoint": endpoint, "keys": {"p256dh": VapidKeys.generate().public_b64, "auth": b64e(os.urandom(16))}}


async def test_public_key_is_stable(db: Any, redis: Redis) -> None:
    first = (await run(db, redis, "{ pushPublicKey }"))["pushPublicKey"]
    assert len(first) == 87
    assert (await run(db, redis, "{ pushPublicKey }"))["pushPublicKey"] == first
    stored = await db.meta.find_one({"_id": "vapid"})
    assert stored["public_key"] == first


async def test_subscribe_update_unsubscribe(db: Any, redis: Redis) -> None:
    variables: dict[str, Any] = {"sub": subscription(), "districts": [to_global("District", "huaqiangbei")],
                 "topics": ["FESTIVALS", "CROWD_ALERTS"], "locale": "zh-HK"}
    payload = (await run(db, redis, SUBSCRIBE, variables))["subscribePush"]
    assert payload["errors"] == []
    assert payload["subscription"] == {"endpoint": variables["sub"]["endpoint"],
                                       "districts": [to_global("District", "huaqiangbei")],
                                       "topics": ["CROWD_ALERTS", "FESTIVALS"], "locale": "zh-HK"}
    again = (await run(db, redis, SUBSCRIBE, variables))["subscribePush"]
    assert again["errors"] == [] and await db[COLLECTION].count_documents({}) == 1

    update = """mutation ($e: String!, $d: [ID!]!) {
      updatePushPreferences(endpoint: $e, districts: $d, topics: [OFFERS]) {
        subscription { districts topics locale } errors { field code } } }"""
    updated = (await run(db, redis, update, {"e": variables["sub"]["endpoint"],
                                             "d": [to_global("District", "shekou")]}))["updatePushPreferences"]
    assert updated == {"subscription": {"districts": [to_global("District", "shekou")], "topics": ["OFFERS"],
                                        "locale": "zh-HK"}, "errors": []}
    missing = (await run(db, redis, update, {"e": "https://142.250.72.10/none",
                                             "d": [to_global("District", "shekou")]}))["updatePushPreferences"]
    assert missing["subscription"] is None and missing["errors"][0]["code"] == "NOT_FOUND"

    remove = "mutation ($e: String!) { unsubscribePush(endpoint: $e) { removed errors { code } } }"
    assert (await run(db, redis, remove, {"e": variables["sub"]["endpoint"]}))["unsubscribePush"] == {
        "removed": True, "errors": []}
    assert (await run(db, redis, remove, {"e": variables["sub"]["endpoint"]}))["unsubscribePush"] == {
        "removed": False, "errors": []}


async def test_field_errors_are_typed(db: Any, redis: Redis) -> None:
    bad = subscription("https://10.0.0.1/push")
    bad["keys"]["auth"] = b64e(os.urandom(8))
    variables: dict[str, Any] = {"sub": bad, "districts": [to_global("District", "atlantis")], "topics": ["OFFERS"]}
    payload = (await run(db, redis, SUBSCRIBE, variables))["subscribePush"]
    assert payload["subscription"] is None
    assert {(e["field"], e["code"]) for e in payload["errors"]} == {
        ("subscription.endpoint", "push_endpoint_private"), ("subscription.keys.auth", "push_auth_invalid"),
        ("districts", "unknown_district")}
    many: dict[str, Any] = {"sub": subscription(), "districts": [to_global("District", f"d{i}") for i in range(200)],
            "topics": ["OFFERS"]}
    payload = (await run(db, redis, SUBSCRIBE, many))["subscribePush"]
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("districts", "too_many_districts")]


async def test_rate_limited_code(db: Any, redis: Redis) -> None:
    await redis.delete("rl:push:unknown")  # no request in these tests: the client is "unknown"
    variables: dict[str, Any] = {"sub": subscription(), "districts": [to_global("District", "huaqiangbei")],
                                 "topics": ["OFFERS"]}
    for _ in range(subs.RATE_MAX_CALLS):
        assert (await run(db, redis, SUBSCRIBE, variables))["subscribePush"]["errors"] == []
    payload = (await run(db, redis, SUBSCRIBE, variables))["subscribePush"]
    assert payload["subscription"] is None and [e["code"] for e in payload["errors"]] == ["RATE_LIMITED"]
    await redis.delete("rl:push:unknown")


async def test_subscribed_browser_receives_and_expired_is_deleted(db: Any, redis: Redis, fresh_service: PushService,
                                                                 sender: PushSender) -> None:
    _, target = fresh_service.subscriber()
    stored = await subs.subscribe(db, redis, HostGuard(allow_local=True), subs.SubscriptionInput(
        target.endpoint, target.p256dh, target.auth, subs.Preferences(["dongmen"], ["offers"], "en")),
        client="e2e-" + os.urandom(3).hex(), default_locale="en", now=datetime.now(UTC))
    loaded = PushSubscription.from_doc(await db[COLLECTION].find_one({"_id": stored.id}))
    assert (await sender.send(encode(loaded.target(), "东门新春优惠", ttl=600))).outcome is Outcome.DELIVERED
    assert fresh_service.received[-1].plaintext.decode() == "东门新春优惠"
    fresh_service.answer(410)
    result = await sender.send(encode(loaded.target(), "again", ttl=600))
    assert result.outcome is Outcome.EXPIRED
    await subs.delete_expired(db, loaded.id)
    assert await db[COLLECTION].count_documents({}) == 0


def test_push_message_keys_are_translated() -> None:
    for key in subs.MESSAGE_KEYS:
        texts = messages.MESSAGES.get(key)
        assert texts and set(texts) == {"zh-CN", "zh-HK", "en"} and len(set(texts.values())) > 1, key
