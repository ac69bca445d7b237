"""The sender over TLS: HTTP/2 by ALPN (multiplexed, stream limits, GOAWAY, resets) and the HTTP/1.1 fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.push.encode import Subscription, encode
from server.push.hosts import HostGuard
from server.push.sender import Outcome, PushSender
from server.push.vapid import VapidKeys, VapidSigner
from tests.push.push_service import PushService
from tests.push.tls_push_service import MisbehavingH2Service, RunningTlsPushService, TestCA, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(Path(tmp_path_factory.mktemp("ca")))


@pytest.fixture
async def tls_sender(vapid_keys: VapidKeys, ca: TestCA) -> AsyncIterator[PushSender]:
    s = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"), HostGuard(allow_local=True),
                   concurrency=50, timeout=5, ca_file=ca.ca_file)
    yield s
    await s.aclose()


async def running(ca: TestCA, **options: object) -> tuple[RunningTlsPushService, PushService]:
    server = RunningTlsPushService(ca, **options)  # type: ignore[arg-type]
    return server, await server.start()


async def send_many(sender: PushSender, targets: list[Subscription], text: str = "hi") -> list[Outcome]:
    results = await asyncio.gather(*(sender.send(encode(t, f"{text} {i}".encode(), ttl=60))
                                     for i, t in enumerate(targets)))
    return [r.outcome for r in results]


@pytest.mark.parametrize(("alpn", "protocol"), [(("h2", "http/1.1"), "h2"), (("http/1.1",), "http/1.1")])
async def test_both_protocols_deliver_every_message_once(ca: TestCA, tls_sender: PushSender,
                                                         alpn: tuple[str, ...], protocol: str) -> None:
    server, service = await running(ca, alpn=alpn)
    try:
        subscribers = [service.subscriber() for _ in range(36)]  # within max_per_host: none is put back
        outcomes = await send_many(tls_sender, [target for _, target in subscribers], "节日")
        assert outcomes == [Outcome.DELIVERED] * 36
        assert tls_sender.protocols[service.url] == protocol
        assert sorted(r.plaintext for r in service.received) == sorted(f"节日 {i}".encode() for i in range(36))
        assert {r.token for r in service.received} == {sub.token for sub, _ in subscribers}
        assert not service.rejected
    finally:
        await server.stop()


async def test_a_stream_limit_of_one_still_delivers_everything(ca: TestCA, tls_sender: PushSender) -> None:
    server, service = await running(ca, max_streams=1)
    try:
        targets = [service.subscriber()[1] for _ in range(12)]
        assert await send_many(tls_sender, targets) == [Outcome.DELIVERED] * 12
        assert len(service.received) == 12 and tls_sender.protocols[service.url] == "h2"
    finally:
        await server.stop()


async def test_goaway_mid_batch_sends_the_unprocessed_again_and_nothing_twice(ca: TestCA,
                                                                             tls_sender: PushSender) -> None:
    service = await MisbehavingH2Service(ca, mode="goaway", goaway_after=4).start()
    try:
        targets = [Subscription(f"{service.url}/push/t{i}", *_keys(tls_sender)) for i in range(20)]
        outcomes = await send_many(tls_sender, targets)
        assert outcomes == [Outcome.DELIVERED] * 20
        assert sorted(service.tokens) == sorted(f"/push/t{i}" for i in range(20))  # each exactly once
        assert service.connections >= 5  # four answers per connection, then GOAWAY
    finally:
        await service.stop()


@pytest.mark.parametrize("mode", ["hold", "429", "reset", "invalid"])
async def test_a_misbehaving_service_does_not_stall_a_good_one(ca: TestCA, tls_sender: PushSender,
                                                               mode: str) -> None:
    bad = await MisbehavingH2Service(ca, mode=mode).start()
    server, good = await running(ca)
    try:
        keys = _keys(tls_sender)
        bad_sends = asyncio.gather(*(tls_sender.send(encode(Subscription(f"{bad.url}/push/b{i}", *keys), b"x",
                                                            ttl=60)) for i in range(60)))
        good_targets = [good.subscriber()[1] for _ in range(30)]
        # "hold" answers nothing until released, which happens only after every good message was delivered
        assert await send_many(tls_sender, good_targets) == [Outcome.DELIVERED] * 30
        if mode == "hold":  # it answers nothing: no more of the sender's 50 slots wait on it than max_per_host
            assert bad.requests <= 50 * 3 // 4
        bad.release.set()
        bad_results = await bad_sends
        if mode == "hold":
            # the sends beyond max_per_host waited for a slot, or came back to be retried later
            assert {r.outcome for r in bad_results} <= {Outcome.DELIVERED, Outcome.RATE_LIMITED}
        elif mode == "429":
            assert all(r.outcome is Outcome.RATE_LIMITED for r in bad_results)
            assert tls_sender.paused_for(bad.url) > 60
        else:  # resets and invalid frames: retried later, and the host is backed off
            assert {r.outcome for r in bad_results} <= {Outcome.RETRYABLE, Outcome.RATE_LIMITED}
            assert tls_sender.paused_for(bad.url) > 0
            assert tls_sender.paused_for(good.url) == 0
    finally:
        await bad.stop()
        await server.stop()


async def test_an_answer_that_does_not_come_in_time_is_retryable_and_its_stream_reset(ca: TestCA,
                                                                                      vapid_keys: VapidKeys) -> None:
    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"), HostGuard(allow_local=True),
                        timeout=0.5, ca_file=ca.ca_file)
    service = await MisbehavingH2Service(ca, mode="hold").start()
    try:
        keys = _keys(sender)
        results = await asyncio.gather(*(sender.send(encode(Subscription(f"{service.url}/push/h{i}", *keys), b"x",
                                                            ttl=60)) for i in range(3)))
        assert [r.outcome for r in results] == [Outcome.RETRYABLE] * 3
        assert all(r.posted and "timeout" in r.detail for r in results)
        assert service.requests == 3
        for _ in range(100):  # the resets are on their way to the service
            if service.resets == 3:
                break
            await asyncio.sleep(0.02)
        assert service.resets == 3
    finally:
        await sender.aclose()
        await service.stop()


async def test_a_private_address_at_send_time_is_refused_over_http2(ca: TestCA, vapid_keys: VapidKeys) -> None:
    """The name resolved to a public address when checked, and to 127.0.0.1 when the connection is dialled."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def dns(host: str, port: int) -> list[str]:
        return next(answers, ["127.0.0.1"])

    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"),
                        HostGuard(resolve=dns, cache_seconds=0), ca_file=ca.ca_file)
    server, service = await running(ca)
    try:
        _, target = service.subscriber()
        port = target.endpoint.split(":")[2].split("/")[0]
        renamed = Subscription(target.endpoint.replace(f"127.0.0.1:{port}", f"push.example:{port}"),
                               target.p256dh, target.auth)
        result = await sender.send(encode(renamed, b"hello", ttl=60))
        assert result.outcome is Outcome.BLOCKED and "127.0.0.1" in result.detail
        assert service.requests == 0
    finally:
        await sender.aclose()
        await server.stop()


def _keys(sender: PushSender) -> tuple[str, str]:
    """Valid subscriber keys for a service that does not decrypt (the misbehaving one)."""
    from tests.push.push_service import PushService as Decrypting

    _, target = Decrypting().subscriber()
    return target.p256dh, target.auth


def test_a_request_written_whole_is_what_h2_would_send() -> None:
    """`send_request`'s frames, read by h2's server side: the same request, a header block beyond one frame
    split into CONTINUATION frames, and the windows counted down as h2 counts them."""
    import h2.config
    import h2.connection
    import h2.events
    from hpack import NeverIndexedHeaderTuple

    from server.push.header_encoding import RepeatingHeadersEncoder
    from server.push.http2 import _FanoutH2

    client = _FanoutH2(h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                                 normalize_outbound_headers=False))
    client.encoder = RepeatingHeadersEncoder()
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    got: dict[int, tuple[dict[bytes, bytes], bytes]] = {}
    for stream_id, token in ((1, b"t" * 100), (3, b"u" * 40_000), (5, b"t" * 100)):  # 40 kB: three frames
        body = bytes([stream_id]) * 300
        headers = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"push.example"),
                   NeverIndexedHeaderTuple(b":path", f"/send/{stream_id}".encode()),
                   NeverIndexedHeaderTuple(b"content-length", b"300"), (b"ttl", b"60"),
                   (b"authorization", b"vapid t=" + token)]
        assert client.send_request(stream_id, headers, body, b"push.example")
        assert client.streams[stream_id].outbound_flow_control_window == 65_535 - 300
        for event in server.receive_data(client.data_to_send()):
            if isinstance(event, h2.events.RequestReceived):
                got[event.stream_id] = ({bytes(n): bytes(v) for n, v in event.headers or []}, b"")
            elif isinstance(event, h2.events.DataReceived):
                got[event.stream_id] = (got[event.stream_id][0], got[event.stream_id][1] + (event.data or b""))
            elif isinstance(event, h2.events.StreamEnded):
                assert event.stream_id in got
        headers_got, body_got = got[stream_id]
        assert headers_got[b":path"] == f"/send/{stream_id}".encode() and body_got == body
        assert headers_got[b"authorization"] == b"vapid t=" + token
    assert client.outbound_flow_control_window == 65_535 - 900
    assert not client.send_request(7, [], b"x" * 70_000, b"push.example")  # beyond the window: h2's own way


@pytest.mark.parametrize("size", [0, 20_000, 70_000])  # empty; beyond one 16 kB frame; beyond the 64 kB window
async def test_a_body_send_request_cannot_write_whole_goes_by_h2s_own_way(ca: TestCA, vapid_keys: VapidKeys,
                                                                         size: int) -> None:
    """`send_request` declines these (it writes one DATA frame within the windows): the headers and body go by
    h2's send_headers and send_data, the larger one waiting for the service's WINDOW_UPDATE."""
    from server.domain.push.message import Urgency
    from server.push.encode import EncodedMessage, headers_for

    sender = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"), HostGuard(allow_local=True),
                        timeout=5, ca_file=ca.ca_file)
    service = await MisbehavingH2Service(ca).start()
    try:
        message = EncodedMessage(f"{service.url}/push/big", b"b" * size, headers_for(60, Urgency.NORMAL, None))
        result = await sender.send(message)
        assert result.outcome is Outcome.DELIVERED, result
        assert sender.protocols[service.url] == "h2"
        assert service.requests == 1 and service.body_bytes == size
    finally:
        await sender.aclose()
        await service.stop()


@pytest.mark.parametrize("size", [10, 0])  # written by send_request; by h2's send_headers, which opens it first
async def test_a_header_block_that_cannot_be_encoded_leaves_no_stream_open(ca: TestCA, size: int) -> None:
    """The stream is closed without an RST_STREAM (the service never saw it), the connection takes no new
    streams (its HPACK table may be out of step), and a stream already in flight on it is still answered."""
    import ssl

    from server.push.http2 import Http2Connection, Unsendable

    service = await MisbehavingH2Service(ca, mode="hold").start()
    context = ssl.create_default_context(cafile=ca.ca_file)
    context.set_alpn_protocols(["h2"])
    port = int(service.url.rsplit(":", 1)[1])
    connection = await Http2Connection.open("127.0.0.1", port, "127.0.0.1", f"127.0.0.1:{port}", context, 5)
    assert connection is not None
    try:
        connection.active += 1
        held = asyncio.create_task(connection.request("/push/held", [(b"ttl", b"60")], b"x", 5))
        for _ in range(200):
            if service.requests == 1:
                break
            await asyncio.sleep(0.01)
        connection.active += 1
        with pytest.raises(Unsendable):
            await connection.request("/push/bad", [(b"ttl", 60)], b"y" * size, 5)  # type: ignore[list-item]
        assert connection._h2.open_outbound_streams == 1  # the held one only
        assert not connection.usable and connection.free == 0
        service.release.set()
        answer = await held
        assert answer.status == 201 and service.resets == 0 and service.requests == 1
    finally:
        await connection.aclose()
        await service.stop()
