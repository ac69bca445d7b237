"""uvicorn's WebSocket protocol (websockets' sans-I/O implementation, uvicorn's default) with less kept per socket.

Every open live socket holds one of these for hours, mostly idle: 5,000 of them per web process. The stock class
keeps the handshake's request and response headers after the handshake (twice: websockets' parser holds the
request too), and an asyncio.Queue and an asyncio.Event, each deque in them a 64-slot block (760 bytes)
allocated up front: ~10 KB per socket of which an idle one uses nothing. Behaviour is unchanged (same
frames, flow control, keepalive, close handshake).

Every place that starts the web process names it: the Procfile and deploy/Dockerfile (`--ws
server.api.live.protocol:LiveWebSocketProtocol`), `python -m server`, bench/serve.py and the tests' servers
(tests/api/test_live_protocol.py checks the command lines).
"""

from __future__ import annotations

import asyncio
import logging
from struct import pack
from typing import Any, Final

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN, Protocol

IMPORT_PATH: Final = "server.api.live.protocol:LiveWebSocketProtocol"
# How every web process runs its sockets (uvicorn.Config keywords; the command line says the same). Without
# permessage-deflate: each socket would keep its own zlib context (~70 KB) and compress every shared frame again.
UVICORN_WS: Final[dict[str, Any]] = {"ws": IMPORT_PATH, "ws_per_message_deflate": False}
UVICORN_WS_ARGS: Final = ("--ws", IMPORT_PATH, "--ws-per-message-deflate", "false")


class _WarningsUp(logging.LoggerAdapter[logging.Logger]):
    """A socket's logger: uvicorn.error from warnings up, whatever levels the logging config sets (dictConfig, as
    uvicorn runs it at start, resets the level of a configured logger's children, so a child logger with its own
    level would not do). uvicorn and websockets log three INFO lines per socket ('"WebSocket /graphql"
    [accepted]', "connection open", "connection closed") that say less than the access log's one line (path,
    close code, duration: server/observability/middleware.py); each went through the redaction filter and the
    JSON formatter, ~10 % of a shopper subscribe's CPU. Errors and tracebacks still reach the log as before."""

    level = logging.WARNING  # uvicorn compares its logger's level with its TRACE level

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # the record as uvicorn.error would make it


SOCKET_LOG: Final = _WarningsUp(logging.getLogger("uvicorn.error"), {})


def text_frame_head(size: int) -> bytes:
    """The RFC 6455 header of a server's text frame of `size` bytes without extensions: FIN + opcode 1, the
    length, no mask. Followed by the UTF-8 bytes, it is exactly what websockets would write."""
    if size < 126:
        return pack("!BB", 0x81, size)
    if size < 65536:
        return pack("!BBH", 0x81, 126, size)
    return pack("!BBQ", 0x81, 127, size)


class _Inbox:
    """The part of asyncio.Queue uvicorn uses for received events (put_nowait, get, empty), on a list."""

    __slots__ = ("items", "loop", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: list[Any] = []
        self.waiter: asyncio.Future[None] | None = None  # the one reader (the app's receive) waiting

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self.items

    def qsize(self) -> int:
        return len(self.items)

    async def get(self) -> Any:
        while not self.items:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.pop(0)


class _Gate:
    """asyncio.Event's set, clear, is_set and wait, its waiters in a list made only while someone waits."""

    __slots__ = ("loop", "open", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.open = False
        self.waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self.open

    def set(self) -> None:
        self.open = True
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self.open = False

    async def wait(self) -> bool:
        if self.open:
            return True
        waiter = self.loop.create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        try:
            await waiter
        finally:
            if self.waiters is not None and waiter in self.waiters:
                self.waiters.remove(waiter)
        return True


class LiveWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = self.conn.logger = SOCKET_LOG  # type: ignore[assignment]  # used as a Logger
        self.queue = _Inbox(self.loop)  # type: ignore[assignment]
        self.gate = _Gate(self.loop)
        self.gate.set()
        self.writable = self.gate  # type: ignore[assignment]

    def send_text_now(self, text: str) -> bool:
        """Write one text frame now if nothing stands in the way (else False: use the ASGI send, which waits)."""
        data = text.encode()
        return self.write_frame_now(text_frame_head(len(data)) + data)

    def write_frame_now(self, frame: bytes) -> bool:
        """Write a whole frame built by `text_frame_head` now if nothing stands in the way (else False).

        A live update is by far the most sent frame, 5,000 sockets at a time: it skips the ASGI message, two
        coroutines and websockets' general framing, and the fan-out builds the bytes once for all the
        subscribers whose frames are the same, so this is only the checks and the transport's write.
        """
        conn = self.conn
        if not (self.gate.open and self.handshake_complete and not self.close_sent and not self.disconnected
                and self.initial_response is None and conn.state is OPEN and not conn.extensions
                and not conn.expect_continuation_frame):
            return False
        self.transport.write(frame)
        return True

    def start_keepalive(self) -> None:
        # Called once the handshake's response is written: its headers and the request's are not read again.
        super().start_keepalive()
        del self.request, self.response
        conn = self.conn
        if conn.state is OPEN and not conn.reader.buffer and not conn.events:
            # websockets' parser is a generator whose handshake step keeps the parsed request (~2.5 KB) in its
            # frame for as long as the socket lives. Nothing of the client's is buffered or parsed yet (it has
            # not seen our 101): the frame loop alone takes over, exactly where the handshake step would go on.
            conn.parser.close()
            conn.parser = Protocol.parse(conn)
            next(conn.parser)
