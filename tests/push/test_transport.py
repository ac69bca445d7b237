"""The lean HTTP/1.1 client against a raw socket server that answers the shapes push services use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.push.transport import ConnectFailed, OriginPool, TransportError, request_target
from server.services.embedded import free_port


class Canned:
    """Answers each request with the next canned bytes; records requests and connections."""

    def __init__(self, answers: list[bytes], close_after: bool = False) -> None:
        self.answers = answers
        self.requests: list[bytes] = []
        self.connections = 0
        self.close_after = close_after

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while self.answers:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            self.requests.append(head + body)
            writer.write(self.answers.pop(0))
            await writer.drain()
            if self.close_after:
                break
        writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[object]:
    servers: list[asyncio.Server] = []

    async def start(canned: Canned) -> str:
        server = await asyncio.start_server(canned.handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_keep_alive_reuses_one_connection_and_sends_one_well_formed_request(serve: object) -> None:
    canned = Canned([b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\nContent-Length: 0\r\n\r\n",
                     b"HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone"])
    origin = await serve(canned)  # type: ignore[operator]
    pool = OriginPool(origin)
    first = await pool.post("/push/a?x=1", b"\x00\x01body", {"TTL": "60", "Content-Encoding": "aes128gcm"})
    second = await pool.post("/push/b", b"x", {"TTL": "60"})
    assert (first.status, first.headers["location"], first.body) == (201, "/m/1", b"")
    assert (second.status, second.text) == (410, "gone")
    assert canned.connections == 1
    head, _, body = canned.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /push/a?x=1 HTTP/1.1" and f"Host: {origin[7:]}" in lines
    assert "Content-Length: 6" in lines and "TTL: 60" in lines and body == b"\x00\x01body"
    await pool.aclose()


async def test_chunked_and_interim_answers(serve: object) -> None:
    canned = Canned([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n5\r\nslow \r\n4;ext=1\r\ndown\r\n0\r\nX-Trailer: 1\r\n\r\n",
                     b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"])
    pool = OriginPool(await serve(canned))  # type: ignore[operator]
    answer = await pool.post("/p", b"x", {})
    assert (answer.status, answer.headers["retry-after"], answer.body) == (429, "7", b"slow down")
    assert (await pool.post("/p", b"y", {})).status == 201  # the connection is still in step
    assert canned.connections == 1
    await pool.aclose()


async def test_connection_close_and_close_delimited_bodies_open_a_new_connection(serve: object) -> None:
    canned = Canned([b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 4\r\n\r\noops",
                     b"HTTP/1.0 201 Created\r\n\r\nno length, ends with the connection",
                     b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"], close_after=True)
    pool = OriginPool(await serve(canned))  # type: ignore[operator]
    assert (await pool.post("/p", b"1", {})).status == 500
    second = await pool.post("/p", b"2", {})
    assert (second.status, second.text) == (201, "no length, ends with the connection")
    assert (await pool.post("/p", b"3", {})).status == 201
    assert canned.connections == 3
    await pool.aclose()


async def test_failures_are_typed(serve: object) -> None:
    with pytest.raises(ConnectFailed):
        await OriginPool(f"http://127.0.0.1:{free_port()}").post("/p", b"x", {})
    garbage = OriginPool(await serve(Canned([b"SMTP ready\r\n\r\n"])))  # type: ignore[operator]
    with pytest.raises(TransportError):
        await garbage.post("/p", b"x", {})
    cut = OriginPool(await serve(Canned([b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nshort"],  # type: ignore[operator]
                                        close_after=True)))
    with pytest.raises(TransportError):
        await cut.post("/p", b"x", {})
    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    quiet = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    silent = OriginPool(f"http://127.0.0.1:{quiet.sockets[0].getsockname()[1]}", timeout=0.2)
    with pytest.raises(TimeoutError):
        await silent.post("/p", b"x", {})
    await silent.aclose()
    quiet.close()
    await quiet.wait_closed()
    with pytest.raises(ValueError):
        await garbage.post("/p q", b"x", {})
    with pytest.raises(ValueError):
        await garbage.post("/p", b"x", {"X-Evil": "a\r\nInjected: 1"})
    assert request_target("https://fcm.googleapis.com/fcm/send/abc?q=1") == "/fcm/send/abc?q=1"
