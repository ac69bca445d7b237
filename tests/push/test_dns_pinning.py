"""The sender dials only addresses the SSRF guard resolved and checked (its resolver is the guard's), so a DNS
answer that changes between the check and the connection — rebinding to an inside address — is never used."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.domain.push.hosts import UnsafeHost
from server.push.encode import Subscription, encode
from server.push.hosts import HostGuard
from server.push.sender import Outcome, PushSender
from server.push.vapid import VapidKeys, VapidSigner
from tests.push.push_service import PushService
from tests.push.push_service import PushService as Decrypting
from tests.push.tls_push_service import RunningTlsPushService, make_ca


class Answers:
    """A DNS stand-in: the next answer for every name, and how often it was asked."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


async def test_the_connection_goes_to_the_address_the_guard_resolved(fresh_service: PushService,
                                                                    vapid_keys: VapidKeys) -> None:
    """push.invalid resolves nowhere but through the guard: reaching the push service proves who resolved it."""
    dns = Answers(["127.0.0.1"])
    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"),
                        HostGuard(allow_local=True, resolve=dns))
    try:
        _, target = fresh_service.subscriber()
        port = urlsplit(target.endpoint).port
        renamed = Subscription(target.endpoint.replace(f"127.0.0.1:{port}", f"push.invalid:{port}"),
                               target.p256dh, target.auth)
        before = fresh_service.requests
        result = await sender.send(encode(renamed, b"hello", ttl=60))
        assert fresh_service.requests == before + 1, result
        assert dns.asked >= 1
    finally:
        await sender.aclose()


async def test_a_rebinding_answer_is_refused_and_the_checked_one_kept() -> None:
    """What both protocols' dials connect to: the guard's checked addresses, reused for their lifetime."""
    now = [0.0]
    dns = Answers(["93.184.216.34"], ["127.0.0.1"])
    guard = HostGuard(resolve=dns, cache_seconds=60, clock=lambda: now[0])
    assert await guard.addresses("push.example", 443) == ["93.184.216.34"]
    assert await guard.addresses("push.example", 443) == ["93.184.216.34"]  # within the check's lifetime
    assert dns.asked == 1
    now[0] = 61.0  # the name now points inside: refused, never dialled
    with pytest.raises(UnsafeHost, match=r"127\.0\.0\.1"):
        await guard.addresses("push.example", 443)


async def test_a_private_address_at_send_time_is_refused_over_http1(tmp_path: Path, vapid_keys: VapidKeys) -> None:
    """The name resolved to a public address when checked, and to 127.0.0.1 when the connection is dialled."""
    ca = make_ca(tmp_path)
    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"),
                        HostGuard(resolve=Answers(["93.184.216.34"], ["127.0.0.1"]), cache_seconds=0),
                        http2=False, ca_file=ca.ca_file)
    server = RunningTlsPushService(ca, alpn=("http/1.1",))
    service = await server.start()
    try:
        _, target = service.subscriber()
        port = urlsplit(target.endpoint).port
        renamed = Subscription(target.endpoint.replace(f"127.0.0.1:{port}", f"push.example:{port}"),
                               target.p256dh, target.auth)
        result = await sender.send(encode(renamed, b"hello", ttl=60))
        assert result.outcome is Outcome.BLOCKED and "127.0.0.1" in result.detail
        assert service.requests == 0
    finally:
        await sender.aclose()
        await server.stop()


async def test_an_endpoint_resolving_inside_is_blocked_before_any_request(push_service: PushService,
                                                                         vapid_keys: VapidKeys) -> None:
    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"),
                        HostGuard(resolve=Answers(["10.0.0.8"])))
    try:
        _, keys = push_service.subscriber()  # real subscriber keys; no service is contacted
        target = Subscription("https://push.example/send/abc", keys.p256dh, keys.auth)
        result = await sender.send(encode(target, b"hello", ttl=60))
        assert result.outcome is Outcome.BLOCKED and "10.0.0.8" in result.detail
    finally:
        await sender.aclose()



@pytest.mark.parametrize(("alpn", "protocol"), [(("h2", "http/1.1"), "h2"), (("http/1.1",), "http/1.1")])
async def test_each_checked_address_is_tried_in_turn(tmp_path: Path, vapid_keys: VapidKeys,
                                                     alpn: tuple[str, ...], protocol: str) -> None:
    """The name's first address refuses the connection (nothing listens on 127.0.0.2); the second is dialled."""
    ca = make_ca(tmp_path)
    dns = Answers(["127.0.0.2", "127.0.0.1"])
    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"),
                        HostGuard(allow_local=True, resolve=dns), timeout=5, ca_file=ca.ca_file)
    server = RunningTlsPushService(ca, alpn=alpn)
    service = await server.start()
    try:
        service.url = service.url.replace("127.0.0.1", "localhost")  # the name its VAPID audience is checked by
        _, target = service.subscriber()
        result = await sender.send(encode(target, b"hello", ttl=60))
        assert result.outcome is Outcome.DELIVERED, result
        assert sender.protocols[service.url] == protocol
        assert service.requests == 1
    finally:
        await sender.aclose()
        await server.stop()


@pytest.mark.parametrize("http2", [True, False])
async def test_a_lookup_that_never_answers_ends_at_the_connect_deadline(tmp_path: Path, vapid_keys: VapidKeys,
                                                                        http2: bool) -> None:
    never = asyncio.Event()

    async def silent_dns(host: str, port: int) -> list[str]:
        await never.wait()
        return []

    ca = make_ca(tmp_path)
    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"),
                        HostGuard(allow_local=True, resolve=silent_dns), timeout=0.3, http2=http2, ca_file=ca.ca_file)
    try:
        _, keys = Decrypting().subscriber()
        result = await sender.send(encode(Subscription("https://push.example/send/abc", keys.p256dh, keys.auth),
                                          b"hello", ttl=60))
        assert result.outcome is Outcome.RETRYABLE and not result.posted, result
    finally:
        never.set()
        await sender.aclose()
