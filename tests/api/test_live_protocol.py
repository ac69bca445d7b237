"""Every place that starts the web process runs live sockets the same way: the trimmed WebSocket protocol
(server/api/live/protocol.py), without permessage-deflate. The live tests' servers use UVICORN_WS too."""

from __future__ import annotations

import asyncio
import shlex
from typing import Any

import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from server.api.live.protocol import IMPORT_PATH, UVICORN_WS, UVICORN_WS_ARGS, LiveWebSocketProtocol, text_frame_head
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


async def _serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = embedded.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           **UVICORN_WS))
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
