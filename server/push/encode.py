"""One push message for one subscription: aes128gcm body (RFC 8291) and the RFC 8030 headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

import http_ece  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec

from server.domain.push.endpoints import b64url_decode
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
    headers: Mapping[str, str]  # shared by every message of a (campaign, TTL second): never modified
    # what `headers` depend on, so a sender can reuse what it builds from them (with Authorization)
    header_key: tuple[object, ...] = ()


_headers: dict[tuple[int, str, str | None], Mapping[str, str]] = {}


def headers_for(ttl: int, urgency: Urgency, topic: str | None) -> Mapping[str, str]:
    """The RFC 8030 headers, one shared mapping per (TTL, urgency, topic): a fan-out builds a few per second."""
    key = (ttl, urgency, topic)
    found = _headers.get(key)
    if found is None:
        headers = {"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "TTL": str(check_ttl(ttl)), "Urgency": Urgency(urgency).value}
        if topic is not None:
            headers["Topic"] = check_topic(topic)
        if len(_headers) > 10_000:
            _headers.clear()
        found = _headers[key] = MappingProxyType(headers)
    return found


def encrypt(subscription: Subscription, data: bytes) -> bytes:
    """aes128gcm (RFC 8291) with a fresh ephemeral key, straight through http_ece: pywebpush's WebPusher would
    deep-copy the subscription and re-validate it for every message."""
    try:
        receiver = b64url_decode(subscription.p256dh)
        auth = b64url_decode(subscription.auth)
    except ValueError as exc:
        raise EncodeError(f"subscription keys are not base64url: {exc}") from None
    if len(receiver) != 65 or receiver[0] != 4 or len(auth) != 16:
        raise EncodeError("subscription keys have the wrong length")
    server_key = ec.generate_private_key(ec.SECP256R1())
    return cast(bytes, http_ece.encrypt(data, private_key=server_key, dh=receiver, auth_secret=auth,
                                        version="aes128gcm"))


def encode(subscription: Subscription, payload: bytes | str, *, ttl: int, urgency: Urgency = Urgency.NORMAL,
           topic: str | None = None) -> EncodedMessage:
    """Encrypt `payload` for the subscriber; the caller adds Authorization (see VapidSigner) when sending."""
    data = check_payload(payload)
    ttl = check_ttl(ttl)
    headers = headers_for(ttl, Urgency(urgency), topic)
    return EncodedMessage(subscription.endpoint, encrypt(subscription, data), headers, (ttl, urgency, topic))
