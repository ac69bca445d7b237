"""One push message for one subscription: aes128gcm body (RFC 8291) and the RFC 8030 headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from pywebpush import WebPusher  # type: ignore[import-untyped]

from server.domain.push.message import (  # re-exported: the sending side's vocabulary
    MAX_PLAINTEXT,
    MAX_TTL,
    EncodeError,
    PayloadTooLarge,
    Subscription,
    Urgency,
    check_payload,
    check_topic,
    check_ttl,
)

__all__ = ["MAX_PLAINTEXT", "MAX_TTL", "EncodeError", "EncodedMessage", "PayloadTooLarge", "Subscription",
           "Urgency", "check_payload", "check_topic", "check_ttl", "encode"]

@dataclass(frozen=True, slots=True)
class EncodedMessage:
    endpoint: str
    body: bytes
    headers: dict[str, str]


def encode(subscription: Subscription, payload: bytes | str, *, ttl: int, urgency: Urgency = Urgency.NORMAL,
           topic: str | None = None) -> EncodedMessage:
    """Encrypt `payload` for the subscriber; the caller adds Authorization (see VapidSigner) when sending."""
    data = check_payload(payload)
    headers = {
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(check_ttl(ttl)),
        "Urgency": Urgency(urgency).value,
    }
    if topic is not None:
        headers["Topic"] = check_topic(topic)
    pusher = WebPusher({"endpoint": subscription.endpoint,
                        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}})
    body = cast(bytes, pusher.encode(data, content_encoding="aes128gcm")["body"])
    return EncodedMessage(subscription.endpoint, body, headers)
