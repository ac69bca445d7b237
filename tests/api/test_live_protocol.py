"""Every place that starts the web process runs live sockets the same way: the trimmed WebSocket protocol
(server/api/live/protocol.py), without permessage-deflate. The live tests' servers use UVICORN_WS too."""

from __future__ import annotations

import asyncio
import base64
import os
import shlex
from typing import Any

import uvicorn
import uvloop
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from server.api.live.outbox import Outbox
from server.api.live.protocol import (
    IMPORT_PATH,
    MAX_SKIPS,
    UVICORN_WS,
    UVICORN_WS_ARGS,
    LiveWebSocketProtocol,
    behind_proxy,
    peer_traffic,
    text_frame_head,
)
from server.services import embedded
from server.settings import ROOT


def test_the_procfile_and_the_dockerfile_name_the_protocol_and_turn_deflate_off() -> None:
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    args = shlex.split(web.removeprefix("web:"))
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    command = dockerfile[dockerfile.index("CMD ["):]
    for pair in zip(UVICORN_WS_ARGS[::2], UVICORN_WS_ARGS[1::2], strict=True):
        assert args[args.index(pair[0]) + 1] == pair[1], web
        assert f'"{pair[0]}", "{pair[1]}"' in command.replace("\\\n     ", ""), command


def test_the_keywords_and_the_command_line_agree() -> None:
    assert UVICORN_WS == {"ws": IMPORT_PATH, "ws_per_message_deflate": False}
    assert UVICORN_WS_ARGS == ("--ws", IMPORT_PATH, "--ws-per-message-deflate", "false")


def test_a_text_frame_head_is_what_websockets_writes_at_every_length_class() -> None:
    # the fan-out writes `text_frame_head(n) + bytes` straight to the transport: websockets' own framing must agree
    for size in (0, 1, 125, 126, 127, 65535, 65536, 70000):
        data = b"x" * size
        assert text_frame_head(size) + data == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[]), size


async def _serve(app: Any, **config: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = embedded.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           **{**UVICORN_WS, **config}))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task, port


def _protocols(server: uvicorn.Server) -> list[LiveWebSocketProtocol]:
    return [c for c in server.server_state.connections if isinstance(c, LiveWebSocketProtocol)]


async def _eventually(check: Any) -> None:
    for _ in range(250):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check()


async def test_direct_writes_only_while_the_socket_is_open_and_stops_at_either_sides_close() -> None:
    """The fan-out writes a frame to `direct` without checking anything else (server/api/live/feeds.py), so it
    must be the transport's write exactly while a frame may go out: after the handshake, until a close is sent or
    received. A real uvicorn server with the protocol, a real client."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            if message.get("text") == "close, please":
                await send({"type": "websocket.close", "code": 4000})

    server, task, port = await _serve(app)
    try:
        async with connect(f"ws://127.0.0.1:{port}/", compression=None, proxy=None) as peer:
            await _eventually(lambda: [p.direct is not None for p in _protocols(server)] == [True])
            protocol = _protocols(server)[0]
            text = "直接 written"
            data = text.encode()
            assert protocol.direct is not None
            protocol.direct(text_frame_head(len(data)) + data)
            assert await asyncio.wait_for(peer.recv(), 5) == text  # the bytes are a valid frame, in place
            protocol.pause_writing()  # what the transport calls when its buffer passes the high-water mark
            assert protocol.direct is None
            protocol.resume_writing()
            assert protocol.direct is not None
            await peer.send("close, please")  # the server closes
            await _eventually(lambda: protocol.direct is None)
        async with connect(f"ws://127.0.0.1:{port}/", compression=None, proxy=None) as peer:
            await _eventually(lambda: [p.direct is not None for p in _protocols(server)] == [True])
            protocol = _protocols(server)[0]
            # The client's close frame, handed over as the transport would: `direct` must be None at once, before
            # the connection is lost (a fan-out in between would write after the close).
            close = Frame(Opcode.CLOSE, (1000).to_bytes(2, "big")).serialize(mask=True, extensions=[])
            protocol.data_received(close)
            assert protocol.direct is None
    finally:
        server.should_exit = True
        await task


async def test_peer_traffic_counts_what_the_peer_acknowledged_and_sent() -> None:
    """The keepalive's look at TCP (struct tcp_info's bytes_acked + bytes_received), on a real loopback pair."""
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
    listener = await asyncio.start_server(lambda _r, w: accepted.put_nowait(w), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*listener.sockets[0].getsockname()[:2])
    ours = await asyncio.wait_for(accepted.get(), 5)
    try:
        start = peer_traffic(ours.transport)
        assert start is not None
        ours.write(b"x" * 1000)
        assert await reader.readexactly(1000)
        assert await _eventually_value(lambda: peer_traffic(ours.transport), start + 1000)  # acknowledged
        writer.write(b"y" * 10)
        assert await _eventually_value(lambda: peer_traffic(ours.transport), start + 1010)  # received
    finally:
        writer.close()
        ours.close()
        listener.close()


def test_peer_traffic_reads_uvloops_transports_too() -> None:
    """uvicorn runs on uvloop where it is installed (production): its transports' socket is a PseudoSocket."""
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(test_peer_traffic_counts_what_the_peer_acknowledged_and_sent())
    finally:
        loop.close()


async def _eventually_value(look: Any, wanted: int) -> bool:
    await _eventually(lambda: look() == wanted)
    return True


class _RawPeer:
    """A WebSocket client speaking RFC 6455 by hand, so that the test sees every ping and decides on each pong."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (unmasked): (opcode, payload)."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 10)
        size = b1 & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(size)

    def pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        self.writer.write(bytes((0x8A, 0x80 | len(payload))) + mask
                          + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self) -> None:
        self.writer.close()


PING, TEXT, CLOSE = 0x9, 0x1, 0x8


async def _quiet_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] == "websocket.receive":
        pass


async def _frame_acknowledged(protocol: LiveWebSocketProtocol, peer: _RawPeer, text: str) -> None:
    """Write a frame as the fan-out does, read it on the peer, and wait until TCP says the peer has it."""
    assert protocol.direct is not None
    protocol.direct(text_frame_head(len(text)) + text.encode())
    assert await peer.frame() == (TEXT, text.encode())
    await _eventually(lambda: peer_traffic(protocol.transport) != protocol.heard)


# The keepalive timer is uvicorn's (schedule_ping: call_later); these tests call what it calls, at chosen points,
# with an interval that never comes round by itself: no test hangs on a loaded machine's timing.
NEVER = {"ws_ping_interval": 3600, "ws_ping_timeout": 3600}


async def test_a_direct_peer_that_takes_our_frames_is_pinged_only_every_third_look() -> None:
    server, task, port = await _serve(_quiet_app, proxy_headers=False, **NEVER)
    peer = await _RawPeer.open(port)
    try:
        await _eventually(lambda: len(_protocols(server)) == 1 and _protocols(server)[0].direct is not None)
        protocol = _protocols(server)[0]
        for look in range(MAX_SKIPS):  # TCP shows the peer took frames since the last look: no ping
            await _frame_acknowledged(protocol, peer, f"update {look}")
            protocol.send_keepalive_ping()
            assert protocol.pending_ping_payload is None and protocol.skipped == look + 1
        await _frame_acknowledged(protocol, peer, "one more")
        protocol.send_keepalive_ping()  # the third look pings whatever TCP says
        opcode, payload = await peer.frame()
        assert opcode == PING and protocol.skipped == 0
        peer.pong(payload)
        await _eventually(lambda: protocol.pending_ping_payload is None)  # the pong arrived
        protocol.send_keepalive_ping()  # nothing since the pong: a quiet socket is pinged
        assert (await peer.frame())[0] == PING
        protocol.keepalive_timeout()  # no pong in time: closed as before
        opcode, payload = await peer.frame()
        assert (opcode, int.from_bytes(payload[:2], "big")) == (CLOSE, 1011), payload
    finally:
        peer.close()
        server.should_exit = True
        await task


async def test_a_peer_that_is_a_trusted_proxy_is_always_pinged() -> None:
    """Behind nginx (deploy/nginx.conf) the ACKs are nginx's: a phone gone dead behind it must still be pinged."""
    server, task, port = await _serve(_quiet_app, proxy_headers=True, forwarded_allow_ips="127.0.0.1", **NEVER)
    peer = await _RawPeer.open(port)
    try:
        await _eventually(lambda: len(_protocols(server)) == 1 and _protocols(server)[0].direct is not None)
        protocol = _protocols(server)[0]
        await _frame_acknowledged(protocol, peer, "update")
        protocol.send_keepalive_ping()
        assert (await peer.frame())[0] == PING
    finally:
        peer.close()
        server.should_exit = True
        await task


def test_which_peers_count_as_a_trusted_proxy() -> None:
    assert behind_proxy(True, "127.0.0.1,::1", "127.0.0.1") and behind_proxy(True, "10.0.0.0/8", "10.1.2.3")
    assert behind_proxy(True, ["10.0.0.0/8", "192.168.1.5"], "192.168.1.5") and behind_proxy(True, "*", "1.2.3.4")
    assert behind_proxy(True, "/run/nginx.sock", "/run/nginx.sock")
    assert not behind_proxy(True, "127.0.0.1,::1", "203.0.113.7")
    assert not behind_proxy(False, "*", "127.0.0.1")  # proxy headers off: nobody is a proxy to uvicorn
    assert not behind_proxy(True, "127.0.0.1", None)


async def test_the_outbox_direct_write_follows_the_socket_and_its_own_queue() -> None:
    """The fan-out reads only `Outbox.transport` per subscriber: it must be the socket's transport exactly while the
    socket's `direct` is set and nothing waits in the outbox, and None once either side says no (flow control, a
    queued frame, a close)."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] == "websocket.receive":
            pass

    async def send_text(text: str) -> None:  # as the live transport sends: the server's own ASGI send
        await protocol.send({"type": "websocket.send", "text": text})

    async def close(code: int, reason: str) -> None:
        pass

    server, task, port = await _serve(app)
    try:
        async with connect(f"ws://127.0.0.1:{port}/", compression=None, proxy=None) as peer:
            await _eventually(lambda: [p.direct is not None for p in _protocols(server)] == [True])
            protocol = _protocols(server)[0]
            outbox = Outbox(send_text, close, limit=4, slow_seconds=30, server=protocol)
            assert protocol.direct is not None and outbox.transport is protocol.transport
            protocol.pause_writing()  # the transport's buffer is full: frames queue in the outbox
            assert protocol.direct is None and outbox.transport is None
            outbox.push("queued while paused")
            protocol.resume_writing()
            assert protocol.direct is not None and outbox.transport is None  # a frame still waits: not yet direct
            assert await asyncio.wait_for(peer.recv(), 5) == "queued while paused"
            await _eventually(lambda: outbox.transport is not None)  # caught up: direct again
            assert outbox.transport is protocol.transport
            outbox.push("at once")
            assert await asyncio.wait_for(peer.recv(), 5) == "at once"
            await outbox.stop()
            assert outbox.transport is None and protocol.sink is None
    finally:
        server.should_exit = True
        await task


async def test_a_deflating_socket_never_gets_a_direct_write() -> None:
    """A server run with permessage-deflate (ours are not, but uvicorn's flag allows it) compresses each frame per
    socket: the fan-out's shared bytes must not go to such a socket, only its outbox's sends."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] == "websocket.receive":
            pass

    async def send_text(text: str) -> None:
        await protocol.send({"type": "websocket.send", "text": text})

    async def close(code: int, reason: str) -> None:
        pass

    server, task, port = await _serve(app, ws_per_message_deflate=True)
    try:
        async with connect(f"ws://127.0.0.1:{port}/", compression="deflate", proxy=None) as peer:
            await _eventually(lambda: len(_protocols(server)) == 1 and _protocols(server)[0].handshake_complete)
            protocol = _protocols(server)[0]
            assert protocol.conn.extensions and protocol.direct is None
            outbox = Outbox(send_text, close, limit=4, slow_seconds=30, server=protocol)
            assert outbox.transport is None
            outbox.push("压缩 " * 100)
            assert await asyncio.wait_for(peer.recv(), 5) == "压缩 " * 100
            assert outbox.transport is None
            await outbox.stop()
    finally:
        server.should_exit = True
        await task
