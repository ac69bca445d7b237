"""One push message for one subscription: aes128gcm body (RFC 8291) and the RFC 8030 headers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from pywebpush import WebPusher  # type: ignore[import-untyped]

# aes128gcm in one 4096-byte record: 86 header bytes, a 1-byte delimiter and a 16-byte tag leave 3993.
MAX_PLAINTEXT = 3993
MAX_TTL = 4 * 7 * 24 * 3600
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


class Urgency(StrEnum):
    VERY_LOW = "very-low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class EncodeError(ValueError):
    pass


class PayloadTooLarge(EncodeError):
    def __init__(self, size: int) -> None:
        super().__init__(f"push payload is {size} bytes; at most {MAX_PLAINTEXT} bytes fit one push message")
        self.size = size


@dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    p256dh: str  # base64url, the subscriber's uncompressed P-256 public key
    auth: str  # base64url, the subscriber's 16-byte auth secret


@dataclass(frozen=True, slots=True)
class EncodedMessage:
    endpoint: str
    body: bytes
    headers: dict[str, str]


def check_payload(payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    if not data:
        raise EncodeError("push payload is empty")
    if len(data) > MAX_PLAINTEXT:
        raise PayloadTooLarge(len(data))
    return data


def check_topic(topic: str) -> str:
    """RFC 8030 Topic: at most 32 characters of the base64url alphabet."""
    if not _TOPIC.fullmatch(topic):
        raise EncodeError(f"push topic must be 1-32 characters of A-Z a-z 0-9 - _, got {topic[:40]!r}")
    return topic


def check_ttl(ttl: int) -> int:
    if ttl < 0:
        raise EncodeError("TTL must not be negative")
    return min(ttl, MAX_TTL)


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
