"""What a push message may carry (RFC 8030/8291 limits), checked where campaigns are composed and where
messages are encrypted; pure, so the domain can use it without the sending adapter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

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
