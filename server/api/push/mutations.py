from __future__ import annotations

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.payloads import attempt
from server.api.push.types import (
    PushSubscriptionInfo,
    PushSubscriptionInput,
    PushSubscriptionPayload,
    PushTopic,
    UnsubscribePushPayload,
)
from server.domain.push import subscriptions
from server.domain.push.subscriptions import MAX_DISTRICTS, Preferences, SubscriptionInput


def client_of(info: AppInfo) -> str:
    return info.context.client_ip()


def preferences(districts: list[strawberry.ID], topics: list[PushTopic], locale: str | None) -> Preferences:
    # one past the limit is enough for the service to say "too many" without decoding a huge list
    return Preferences([key_of(d, "District") for d in districts[:MAX_DISTRICTS + 1]],
                       [t.value for t in topics], locale)


@strawberry.type
class PushMutations:
    @strawberry.mutation(description="Store this browser's push subscription, or update it if the endpoint is known.")
    async def subscribe_push(self, info: AppInfo, subscription: PushSubscriptionInput, districts: list[strawberry.ID],
                             topics: list[PushTopic], locale: str | None = None) -> PushSubscriptionPayload:
        ctx = info.context
        data = SubscriptionInput(subscription.endpoint, subscription.keys.p256dh, subscription.keys.auth,
                                 preferences(districts, topics, locale))
        result, errors, _ = await attempt(info, subscriptions.subscribe(
            ctx.db, ctx.redis, ctx.push_host_guard(), data, client=client_of(info), default_locale=ctx.locale,
            now=ctx.now))
        return PushSubscriptionPayload(subscription=PushSubscriptionInfo.of(result) if result else None,
                                       errors=errors)

    @strawberry.mutation(description="Change the districts, topics or locale of a push subscription.")
    async def update_push_preferences(self, info: AppInfo, endpoint: str, districts: list[strawberry.ID],
                                      topics: list[PushTopic], locale: str | None = None) -> PushSubscriptionPayload:
        ctx = info.context
        result, errors, _ = await attempt(info, subscriptions.update_preferences(
            ctx.db, ctx.redis, endpoint, preferences(districts, topics, locale), client=client_of(info),
            default_locale=ctx.locale, now=ctx.now))
        return PushSubscriptionPayload(subscription=PushSubscriptionInfo.of(result) if result else None,
                                       errors=errors)

    @strawberry.mutation(description="Forget a push subscription (idempotent).")
    async def unsubscribe_push(self, info: AppInfo, endpoint: str) -> UnsubscribePushPayload:
        ctx = info.context
        result, errors, _ = await attempt(info, subscriptions.unsubscribe(ctx.db, ctx.redis, endpoint,
                                                                          client=client_of(info)))
        return UnsubscribePushPayload(removed=bool(result), errors=errors)
