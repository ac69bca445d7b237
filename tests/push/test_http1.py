"""The HTTP/1.1 sender against raw answers: sizes by Content-Length, chunked and until close; keep-alive reuse;
a connection the service closed or reset; answers that are not HTTP, too long, or too slow; a full pool."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from server.push.encode import Subscription, encode
from server.push.hosts import HostGuard
from server.push.sender import Outcome, PushSender, SendResult
from server.push.vapid import VapidKeys, VapidSigner
from tests.push.push_service import b64e

Scripted = Callable[[asyncio.StreamWriter], Awaitable[None]]


class RawService:
    """Reads each request whole (head and Content-Length body) and writes the next scripted answer as bytes;
    None closes the connection instead, and a coroutine function is given the writer to answer as it likes."""

    def __init__(self, answers: list[bytes | Scripted | None]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> RawService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0) if self.answers else None
                if answer is None:
                    break
                if not isinstance(answer, bytes):
                    await answer(writer)
                    continue
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower() or answer.startswith(b"HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
async def sender(vapid_keys: VapidKeys) -> AsyncIterator[PushSender]:
    s = PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"), HostGuard(allow_local=True), timeout=5)
    yield s
    await s.aclose()


def small_sender(vapid_keys: VapidKeys, *, connections: int, timeout: float) -> PushSender:
    return PushSender(VapidSigner(vapid_keys, "mailto:ops@shangquan.example"), HostGuard(allow_local=True),
                      timeout=timeout, max_connections_per_service=connections)




async def send(sender: PushSender, service: RawService, n: int = 1) -> list[SendResult]:
    keys = VapidKeys.generate()  # any valid P-256 point will do: this service does not decrypt
    target = Subscription(f"{service.url}/push/x{n}", keys.public_b64, b64e(b"0123456789abcdef"))
    return [await sender.send(encode(target, b"hello", ttl=60))]


async def test_content_length_and_chunked_answers_on_one_kept_alive_connection(sender: PushSender) -> None:
    service = await RawService([
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nLocation: /m/1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n"
        b"\r\n5;x=y\r\nslow \r\n5\r\ndown!\r\n0\r\nX-Trailer: 1\r\n\r\n",
    ]).start()
    try:
        [first] = await send(sender, service)
        [second] = await send(sender, service, 2)
        assert first.outcome is Outcome.DELIVERED and first.status == 201
        assert second.outcome is Outcome.RATE_LIMITED and second.retry_after == 7
        assert second.detail == "slow down!"
        assert service.connections == 1 and len(service.requests) == 2
        request = service.requests[0]
        assert request.startswith(b"POST /push/x1 HTTP/1.1\r\nhost: 127.0.0.1:")
        assert b"ttl: 60\r\n" in request and b"authorization: vapid t=" in request
    finally:
        await service.stop()


async def test_an_answer_until_close_and_a_closed_connection_are_not_reused(sender: PushSender) -> None:
    service = await RawService([b"HTTP/1.0 201 Created\r\n\r\nqueued",
                                b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]).start()
    try:
        for n in range(3):
            [result] = await send(sender, service, n)
            assert result.outcome is Outcome.DELIVERED
        assert service.connections == 3
    finally:
        await service.stop()


@pytest.mark.parametrize(("answer", "detail"), [(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "invalid HTTP/1.1 answer"),
                                                 (None, "connection lost")])
async def test_an_answer_that_is_not_http_or_never_comes_is_retryable(sender: PushSender, answer: bytes | None,
                                                                      detail: str) -> None:
    service = await RawService([answer]).start()
    try:
        [result] = await send(sender, service)
        assert result.outcome is Outcome.RETRYABLE and result.posted
        assert detail in result.detail
        assert sender.paused_for(service.url) > 0  # backed off like any misbehaving service
    finally:
        await service.stop()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than a FIN: the connection was reset, not ended."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


CHUNKED = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",  # four digits: not a 200
    b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 201Created\r\nContent-Length: 0\r\n\r\n",  # no space after the status
    b"HTTP/2.0 201 Created\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 201 Created\r\nContent-Length: +2\r\n\r\nok",  # int() would take each of these
    b"HTTP/1.1 201 Created\r\nContent-Length: 1_0\r\n\r\n0123456789",
    b"HTTP/1.1 201 Created\r\nContent-Length: 1 0\r\n\r\n0123456789",
    b"HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n",
    CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n",
    CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
    CHUNKED + b"5 5\r\nhello\r\n0\r\n\r\n",
    CHUNKED + b"5\r\nhelloXY0\r\n\r\n",  # the chunk's data not followed by CRLF
])
async def test_an_answer_that_only_lenient_parsing_would_read_is_refused(sender: PushSender, answer: bytes) -> None:
    service = await RawService([answer]).start()
    try:
        [result] = await send(sender, service)
        assert result.outcome is Outcome.RETRYABLE and result.posted
        assert "invalid HTTP/1.1 answer" in result.detail
    finally:
        await service.stop()


async def test_strict_forms_still_read_a_reason_less_status_and_chunk_extensions(sender: PushSender) -> None:
    service = await RawService([b"HTTP/1.1 201\r\nContent-Length: 0\r\n\r\n",
                                CHUNKED + b"5 ;ext=1\r\nhello\r\na\r\n, world!!!\r\n0\r\n\r\n"]).start()
    try:
        [first] = await send(sender, service)
        [second] = await send(sender, service, 2)
        assert first.outcome is Outcome.DELIVERED
        assert second.outcome is Outcome.RETRYABLE and second.status == 500 and second.detail == "hello, world!!!"
        assert service.connections == 1
    finally:
        await service.stop()


async def test_a_body_until_close_cut_by_a_reset_is_not_an_answer(sender: PushSender) -> None:
    async def reset_mid_body(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 201 Created\r\n\r\nqueu")
        await writer.drain()
        await asyncio.sleep(0.05)  # let the head and part of the body be read first
        reset(writer)

    service = await RawService([reset_mid_body]).start()
    try:
        [result] = await send(sender, service)
        assert result.outcome is Outcome.RETRYABLE and result.posted
        assert "connection lost" in result.detail
    finally:
        await service.stop()


async def test_a_head_longer_than_max_head_is_refused(sender: PushSender) -> None:
    from server.push.http1 import MAX_HEAD

    service = await RawService([b"HTTP/1.1 201 Created\r\nX-Pad: " + b"a" * (MAX_HEAD + 10)]).start()
    try:
        [result] = await send(sender, service)
        assert result.outcome is Outcome.RETRYABLE and "too long" in result.detail
    finally:
        await service.stop()


@pytest.mark.parametrize("big", [
    b"HTTP/1.1 400 Bad\r\nContent-Length: 100000\r\n\r\n" + b"e" * 100_000,
    b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n" + b"4000\r\n" + b"e" * 0x4000 + b"\r\n"
    + b"186a0\r\n" + b"e" * 100_000 + b"\r\n0\r\n\r\n",
])
async def test_a_body_beyond_max_kept_is_read_and_dropped_and_the_connection_reused(sender: PushSender,
                                                                                   big: bytes) -> None:
    from server.push.http1 import MAX_KEPT

    service = await RawService([big, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]).start()
    try:
        [first] = await send(sender, service)
        [second] = await send(sender, service, 2)
        assert first.outcome is Outcome.FAILED and first.status == 400 and first.detail == "e" * 200
        assert MAX_KEPT < 100_000
        assert second.outcome is Outcome.DELIVERED
        assert service.connections == 1
    finally:
        await service.stop()


CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


async def test_a_reused_connection_lost_before_its_answer_is_retried_once_on_a_new_one(sender: PushSender) -> None:
    """The keep-alive race: the service drops an idle connection as the next request is written.  The request
    goes again on a new connection, and the service is not backed off for it."""
    service = await RawService([CREATED, None, CREATED]).start()
    try:
        [first] = await send(sender, service)
        [second] = await send(sender, service, 2)
        assert first.outcome is Outcome.DELIVERED and second.outcome is Outcome.DELIVERED
        assert service.connections == 2 and len(service.requests) == 3  # the lost copy reached the service
        assert sender.paused_for(service.url) == 0
    finally:
        await service.stop()


async def test_a_reused_connection_lost_mid_answer_or_twice_is_not_retried_again(vapid_keys: VapidKeys) -> None:
    async def cut(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 201 Cre")
        await writer.drain()
        writer.close()

    for answers, requests in (([CREATED, cut], 2),  # part of an answer came: the service may have processed it
                              ([CREATED, None, None], 3)):  # lost on the reused connection, then on the new one
        sender = small_sender(vapid_keys, connections=1, timeout=5)
        service = await RawService(answers).start()
        try:
            [first] = await send(sender, service)
            [second] = await send(sender, service, 2)
            assert first.outcome is Outcome.DELIVERED
            assert second.outcome is Outcome.RETRYABLE and second.posted and "connection lost" in second.detail
            assert len(service.requests) == requests
            assert sender.paused_for(service.url) > 0  # this one is the service misbehaving: backed off
        finally:
            await sender.aclose()
            await service.stop()


async def test_a_connection_idle_longer_than_idle_seconds_is_not_reused(sender: PushSender,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from server.push import http1

    monkeypatch.setattr(http1, "IDLE_SECONDS", 0.05)
    service = await RawService([CREATED, CREATED, CREATED]).start()
    try:
        [first] = await send(sender, service)
        await asyncio.sleep(0.2)  # idle past IDLE_SECONDS: closed, and a new connection dialled
        [second] = await send(sender, service, 2)
        assert first.outcome is second.outcome is Outcome.DELIVERED
        assert service.connections == 2
        monkeypatch.setattr(http1, "IDLE_SECONDS", 60.0)
        [third] = await send(sender, service, 3)
        assert third.outcome is Outcome.DELIVERED and service.connections == 2
    finally:
        await service.stop()


async def test_a_full_pool_serves_its_waiters_on_its_connections(vapid_keys: VapidKeys) -> None:
    async def soon(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.02)  # every request finds both connections busy and waits
        writer.write(CREATED)

    sender = small_sender(vapid_keys, connections=2, timeout=5)
    service = await RawService([soon] * 8).start()
    try:
        results = await asyncio.gather(*(send(sender, service, n) for n in range(8)))
        assert [r.outcome for [r] in results] == [Outcome.DELIVERED] * 8
        assert service.connections == 2 and len(service.requests) == 8
    finally:
        await sender.aclose()
        await service.stop()


async def test_waiting_for_a_pooled_connection_ends_at_the_send_timeout(vapid_keys: VapidKeys) -> None:
    """One connection, held without an answer: the request on it times out (it was posted), and the one waiting
    for the connection gives up at the same deadline, never posted."""
    release = asyncio.Event()

    async def hold(writer: asyncio.StreamWriter) -> None:
        await release.wait()

    sender = small_sender(vapid_keys, connections=1, timeout=0.3)
    service = await RawService([hold]).start()
    try:
        [[held], [waiting]] = await asyncio.gather(send(sender, service, 1), send(sender, service, 2))
        assert held.outcome is Outcome.RETRYABLE and held.posted and "timeout" in held.detail
        assert waiting.outcome is Outcome.RETRYABLE and not waiting.posted
        assert "no connection to the push service in time" in waiting.detail
        assert len(service.requests) == 1
    finally:
        release.set()
        await sender.aclose()
        await service.stop()


async def test_an_answer_trickling_past_the_timeout_is_retryable(vapid_keys: VapidKeys) -> None:
    async def trickle(writer: asyncio.StreamWriter) -> None:
        for byte in b"HTTP/1.1 201 Created\r\nContent-Length: 200\r\n\r\n" + b"." * 200:
            writer.write(bytes([byte]))  # a byte at a time: always some progress, never the whole answer
            await writer.drain()
            await asyncio.sleep(0.02)

    sender = small_sender(vapid_keys, connections=1, timeout=0.3)
    service = await RawService([trickle]).start()
    try:
        [result] = await send(sender, service)
        assert result.outcome is Outcome.RETRYABLE and result.posted and "timeout" in result.detail
    finally:
        await sender.aclose()
        await service.stop()
