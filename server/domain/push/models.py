"""A stored push subscription (collection `push_subscriptions`, `_id` = sha256 of the endpoint)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from server.domain.push.message import Subscription

TOPICS: Final = ("festivals", "offers", "crowd_alerts")
COLLECTION: Final = "push_subscriptions"
# One delivery record per (campaign, subscription); these states are picked up again by a worker's sweeper.
DELIVERIES: Final = "push_deliveries"
WAITING: Final = ("sending", "retry", "deferred")


def subscription_id(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PushSubscription:
    id: str
    endpoint: str
    p256dh: str
    auth: str
    origin: str  # the push service, e.g. https://fcm.googleapis.com: one HTTP client and one VAPID token each
    districts: tuple[str, ...]
    topics: tuple[str, ...]
    locale: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PushSubscription:
        return cls(str(doc["_id"]), str(doc["endpoint"]), str(doc["keys"]["p256dh"]), str(doc["keys"]["auth"]),
                   str(doc["origin"]), tuple(str(d) for d in doc.get("districts") or ()),
                   tuple(str(t) for t in doc.get("topics") or () if t in TOPICS), str(doc["locale"]),
                   doc["created_at"], doc["updated_at"])

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.id, "endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth},
                "origin": self.origin, "districts": list(self.districts), "topics": list(self.topics),
                "locale": self.locale, "created_at": self.created_at, "updated_at": self.updated_at}

    def target(self) -> Subscription:
        return Subscription(self.endpoint, self.p256dh, self.auth)
