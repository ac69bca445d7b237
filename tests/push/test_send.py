from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from server.push.encode import MAX_PLAINTEXT, MAX_TTL, EncodeError, PayloadTooLarge, Urgency, encode
from server.push.hosts import HostGuard
from server.push.sender import Outcome, PushSender, outcome_of, parse_retry_after
from server.push.vapid import VapidKeys, VapidSigner
from tests.push.push_service import PushService


async def test_round_trip_exact_plaintext_and_headers(fresh_service: PushService, sender: PushSender) -> None:
    _, target = fresh_service.subscriber()
    payload = json.dumps({"title": "华强北电子节", "body": "今晚 8 点开幕 🎉", "url": "/festivals/x"},
                         ensure_ascii=False).encode()
    result = await sender.send(encode(target, payload, ttl=3600, urgency=Urgency.HIGH, topic="crowd-huaqiangbei"))
    assert result.outcome is Outcome.DELIVERED and result.status == 201, result
    [got] = fresh_service.received
    assert got.plaintext == payload
    assert got.headers["ttl"] == "3600" and got.headers["urgency"] == "high"
    assert got.headers["topic"] == "crowd-huaqiangbei" and got.headers["content-encoding"] == "aes128gcm"
    assert got.claims["aud"] == fresh_service.url


async def test_largest_payload_fits_one_record(fresh_service: PushService, sender: PushSender) -> None:
    _, target = fresh_service.subscriber()
    payload = bytes(range(256)) * 15 + b"x" * (MAX_PLAINTEXT - 3840)
    message = encode(target, payload, ttl=60)
    assert len(message.body) == 4096
    assert (await sender.send(message)).outcome is Outcome.DELIVERED
    assert fresh_service.received[-1].plaintext == payload


async def test_payload_too_big_is_refused_before_sending(fresh_service: PushService) -> None:
    _, target = fresh_service.subscriber()
    before = fresh_service.requests
    with pytest.raises(PayloadTooLarge, match="3994 bytes"):
        encode(target, b"x" * (MAX_PLAINTEXT + 1), ttl=60)
    with pytest.raises(PayloadTooLarge):
        encode(target, "商" * 1332, ttl=60)  # 3996 bytes of UTF-8
    assert fresh_service.requests == before


def test_ttl_urgency_topic_rules(push_service: PushService) -> None:
    _, target = push_service.subscriber()
    assert encode(target, b"x", ttl=10**9).headers["TTL"] == str(MAX_TTL)
    assert encode(target, b"x", ttl=0).headers["TTL"] == "0"
    assert encode(target, b"x", ttl=5).headers["Urgency"] == "normal"
    assert "Topic" not in encode(target, b"x", ttl=5).headers
    assert encode(target, b"x", ttl=5, urgency=Urgency("very-low")).headers["Urgency"] == "very-low"
    for bad in ("", "a" * 33, "has space", "中文", "a+b/c="):
        with pytest.raises(EncodeError):
            encode(target, b"x", ttl=5, topic=bad)
    assert encode(target, b"x", ttl=5, topic="A" * 32).headers["Topic"] == "A" * 32
    with pytest.raises(EncodeError):
        encode(target, b"x", ttl=-1)
    with pytest.raises(EncodeError):
        encode(target, b"", ttl=5)


@pytest.mark.parametrize(("status", "outcome"), [(404, Outcome.EXPIRED), (410, Outcome.EXPIRED),
                                                 (413, Outcome.TOO_LARGE), (500, Outcome.RETRYABLE),
                                                 (503, Outcome.RETRYABLE), (400, Outcome.FAILED),
                                                 (403, Outcome.FAILED)])
async def test_status_outcomes(fresh_service: PushService, sender: PushSender, status: int,
                               outcome: Outcome) -> None:
    _, target = fresh_service.subscriber()
    fresh_service.answer(status)
    result = await sender.send(encode(target, b"hello", ttl=60))
    assert result.outcome is outcome and result.status == status
    assert outcome_of(202) is Outcome.DELIVERED
    # the next one goes through again
    assert (await sender.send(encode(target, b"hello", ttl=60))).outcome is Outcome.DELIVERED


async def test_429_retry_after_seconds_pauses_that_service(fresh_service: PushService,
                                                           sender: PushSender) -> None:
    _, target = fresh_service.subscriber()
    fresh_service.answer(429, headers={"Retry-After": "120"})
    result = await sender.send(encode(target, b"hello", ttl=60))
    assert result.outcome is Outcome.RATE_LIMITED and result.status == 429 and result.retry_after == 120
    requests = fresh_service.requests
    held = await sender.send(encode(target, b"hello", ttl=60))  # not sent: the service asked us to wait
    assert held.outcome is Outcome.RATE_LIMITED and held.status is None and 100 < (held.retry_after or 0) <= 120
    assert fresh_service.requests == requests


async def test_429_retry_after_http_date(fresh_service: PushService, vapid_keys: VapidKeys) -> None:
    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.cn"), HostGuard(allow_local=True))
    _, target = fresh_service.subscriber()
    when = datetime.now(UTC) + timedelta(seconds=90)
    fresh_service.answer(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    result = await sender.send(encode(target, b"hello", ttl=60))
    assert result.outcome is Outcome.RATE_LIMITED and 85 <= (result.retry_after or 0) <= 90
    await sender.aclose()


def test_parse_retry_after() -> None:
    now = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Sat, 01 Feb 2025 12:01:00 GMT", now) == 60
    assert parse_retry_after("Sat, 01 Feb 2025 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-5", now) is None


async def test_timeouts_and_refused_connections_are_retryable(vapid_keys: VapidKeys) -> None:
    from server.services.embedded import free_port

    signer = VapidSigner(vapid_keys, "mailto:ops@shangquan.cn")
    sender = PushSender(signer, HostGuard(allow_local=True), timeout=0.3)
    from server.push.encode import Subscription
    from tests.push.push_service import b64e

    keys = VapidKeys.generate()  # any valid P-256 point will do as the subscriber key
    target = Subscription(f"http://127.0.0.1:{free_port()}/push/x", keys.public_b64, b64e(b"0123456789abcdef"))
    refused = await sender.send(encode(target, b"hello", ttl=60))
    assert refused.outcome is Outcome.RETRYABLE and refused.status is None

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # read the request, never answer; returns when the client gives up
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    slow = Subscription(f"http://127.0.0.1:{port}/push/x", keys.public_b64, b64e(b"0123456789abcdef"))
    timed_out = await sender.send(encode(slow, b"hello", ttl=60))
    assert timed_out.outcome is Outcome.RETRYABLE and "timeout" in timed_out.detail
    server.close()
    await server.wait_closed()
    await sender.aclose()


async def test_send_time_ssrf_check(fresh_service: PushService, vapid_keys: VapidKeys) -> None:
    strict = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.cn"), HostGuard())
    _, target = fresh_service.subscriber()
    before = fresh_service.requests
    for endpoint in (target.endpoint, target.endpoint.replace("http://", "https://"),
                     "https://10.0.0.8/push/x", "https://169.254.169.254/x", "https://[::1]/x"):
        message = encode(target, b"hello", ttl=60)
        result = await strict.send(type(message)(endpoint, message.body, message.headers))
        assert result.outcome is Outcome.BLOCKED, endpoint
    assert fresh_service.requests == before
    await strict.aclose()


async def test_bounded_concurrency_and_one_client_per_service(fresh_service: PushService,
                                                             sender: PushSender) -> None:
    targets = [fresh_service.subscriber()[1] for _ in range(40)]
    results = await asyncio.gather(*(sender.send(encode(t, f"n{i}".encode(), ttl=60))
                                     for i, t in enumerate(targets)))
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert sorted(r.plaintext for r in fresh_service.received) == sorted(f"n{i}".encode() for i in range(40))
    assert len(sender._h1_pools) == 1
