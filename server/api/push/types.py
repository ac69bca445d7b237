from __future__ import annotations

from enum import Enum

import strawberry

from server.api.payloads import FieldError
from server.domain.push.models import PushSubscription


@strawberry.enum(description="What a shopper wants to be told about.")
class PushTopic(Enum):
    FESTIVALS = "festivals"
    OFFERS = "offers"
    CROWD_ALERTS = "crowd_alerts"


@strawberry.input(description="PushSubscription.toJSON().keys: base64url, padding optional.")
class PushKeysInput:
    p256dh: str = strawberry.field(description="The browser's uncompressed P-256 public key (65 bytes).")
    auth: str = strawberry.field(description="The browser's auth secret (16 bytes).")


@strawberry.input(description="PushSubscription.toJSON() from the browser.")
class PushSubscriptionInput:
    endpoint: str = strawberry.field(description="The push service URL; https only, at most 2048 characters.")
    keys: PushKeysInput


@strawberry.type(description="The stored preferences of one push subscription.")
class PushSubscriptionInfo:
    endpoint: str
    districts: list[strawberry.ID]
    topics: list[PushTopic]
    locale: str

    @staticmethod
    def of(sub: PushSubscription) -> PushSubscriptionInfo:
        from server.api.ids import to_global

        return PushSubscriptionInfo(endpoint=sub.endpoint,
                                    districts=[strawberry.ID(to_global("District", d)) for d in sub.districts],
                                    topics=[PushTopic(t) for t in sub.topics], locale=sub.locale)


@strawberry.type
class PushSubscriptionPayload:
    subscription: PushSubscriptionInfo | None
    errors: list[FieldError]


@strawberry.type
class UnsubscribePushPayload:
    removed: bool = strawberry.field(description="False when no subscription had this endpoint.")
    errors: list[FieldError]
