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
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache
from struct import Struct, pack
from typing import TYPE_CHECKING, Any, Final

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN, Protocol

if TYPE_CHECKING:
    from server.api.live.outbox import Outbox

IMPORT_PATH: Final = "server.api.live.protocol:LiveWebSocketProtocol"
# How every web process runs its sockets (uvicorn.Config keywords; the command line says the same). Without
# permessage-deflate: each socket would keep its own zlib context (~70 KB) and compress every shared frame again.
UVICORN_WS: Final[dict[str, Any]] = {"ws": IMPORT_PATH, "ws_per_message_deflate": False}
UVICORN_WS_ARGS: Final = ("--ws", IMPORT_PATH, "--ws-per-message-deflate", "false")


# Linux's struct tcp_info (linux/tcp.h) up to tcpi_bytes_received: tcpi_bytes_acked (what the peer acknowledged of
# ours) and tcpi_bytes_received (what it sent us), two u64 at offset 120, in every kernel since 4.1. Other systems
# that name TCP_INFO lay their struct out otherwise: there, every quiet look pings.
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
_TCP_INFO_LENGTH: Final = 136
_TRAFFIC: Final = Struct("=QQ")


def peer_traffic(transport: Any) -> int | None:
    """Bytes the peer has acknowledged of ours plus bytes it has sent us on this TCP connection, from the kernel;
    None where it cannot say (not TCP, not Linux, closed). It moves only while the peer's end is alive."""
    sock = transport.get_extra_info("socket") if _TCP_INFO is not None else None
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_LENGTH)
    except (OSError, ValueError, AttributeError):
        return None
    if len(info) < _TCP_INFO_LENGTH:
        return None
    acked, received = _TRAFFIC.unpack_from(info, 120)
    return int(acked + received)


# Looks in a row at which TCP's word may stand for a pong: a socket is pinged at least every third interval.
MAX_SKIPS: Final = 2


@lru_cache(maxsize=8)
def _proxies(allowed: str | tuple[str, ...]) -> tuple[bool, tuple[Any, ...], frozenset[str]]:
    """uvicorn's --forwarded-allow-ips: (all?, networks, other literals such as a unix socket's path)."""
    items = [item.strip() for item in (allowed.split(",") if isinstance(allowed, str) else allowed)]
    networks, literals = [], set()
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            literals.add(item)
    return "*" in items, tuple(networks), frozenset(literals)


def behind_proxy(proxy_headers: bool, allowed: str | Sequence[str] | None, host: str | None) -> bool:
    """Whether the TCP peer is a proxy uvicorn trusts with X-Forwarded-For (deploy/nginx.conf's nginx): then its
    ACKs are the proxy's, and say nothing of the phone behind it."""
    if not proxy_headers or allowed is None:
        return False
    everyone, networks, literals = _proxies(allowed if isinstance(allowed, str) else tuple(allowed))
    if everyone or host in literals:
        return True
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


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


def _watched(name: str) -> property:
    """A flag uvicorn assigns as a plain attribute (`self.close_sent = True`, in a dozen places): stored as before,
    and every assignment re-decides whether frames may go straight to the transport."""
    private = "_" + name

    def get(self: LiveWebSocketProtocol) -> Any:
        return self.__dict__[private]

    def set_(self: LiveWebSocketProtocol, value: Any) -> None:
        self.__dict__[private] = value
        self.recheck()

    return property(get, set_)


class LiveWebSocketProtocol(WebSocketsSansIOProtocol):
    """`direct` is the transport's `write` while a whole frame built by `text_frame_head` may go straight to it
    (the handshake done, nothing closing or closed, no extension, not paused by flow control), else None.

    A live update goes to 5,000 sockets at a time: the fan-out's step per subscriber is then one attribute and
    the transport's write, instead of nine checks and two calls. `direct` is decided again wherever one of those
    conditions can change: the flags uvicorn assigns (watched properties), flow control (pause/resume_writing),
    and after whatever can move websockets' connection state (what the peer sent, a keepalive timeout, shutdown).
    Each change is passed on to the socket's outbox (`sink`), whose own `direct` is what the fan-out reads.

    Keepalive pings go only to sockets that have been quiet for the ping interval (see send_keepalive_ping).
    """

    handshake_complete = _watched("handshake_complete")
    close_sent = _watched("close_sent")
    disconnected = _watched("disconnected")
    initial_response = _watched("initial_response")
    direct: Callable[[bytes], object] | None = None
    sink: Outbox | None = None  # the socket's outbox (server/api/live/outbox.py), told whenever `direct` changes
    heard: int | None = None  # peer_traffic() when the peer last showed it is there (a check or its pong)
    skipped = 0  # looks in a row that took TCP's word for a pong

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = self.conn.logger = SOCKET_LOG  # type: ignore[assignment]  # used as a Logger
        self.queue = _Inbox(self.loop)  # type: ignore[assignment]
        self.gate = _Gate(self.loop)
        self.gate.set()
        self.writable = self.gate  # type: ignore[assignment]
        self.recheck()

    def recheck(self) -> None:
        """Decide `direct` from the protocol's state as it is now."""
        state = self.__dict__
        conn, gate, transport = state.get("conn"), state.get("gate"), state.get("transport")
        ready = (conn is not None and gate is not None and transport is not None and gate.open
                 and state.get("_handshake_complete") and not state.get("_close_sent")
                 and not state.get("_disconnected") and state.get("_initial_response") is None
                 and conn.state is OPEN and not conn.extensions and not conn.expect_continuation_frame)
        write = transport.write if ready else None  # type: ignore[union-attr]
        if write != self.direct:
            self._direct(write)

    def _direct(self, write: Callable[[bytes], object] | None) -> None:
        self.direct = write
        sink = self.sink
        if sink is not None:
            sink.refresh()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.recheck()

    def data_received(self, data: bytes) -> None:
        try:
            super().data_received(data)  # a close frame from the peer moves the connection's state
        finally:
            self.recheck()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.recheck()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.recheck()

    def keepalive_timeout(self) -> None:
        try:
            super().keepalive_timeout()
        finally:
            self.recheck()

    def shutdown(self) -> None:
        self._direct(None)  # sends close 1012 without marking close_sent
        try:
            super().shutdown()
        finally:
            self.recheck()

    async def send(self, message: Any) -> None:
        try:
            await super().send(message)  # accept, close …: the watched flags recheck as they change
        finally:
            self.recheck()

    def send_keepalive_ping(self) -> None:
        """A ping (and its pong, read and parsed here) proves the peer is there; so does TCP, for a peer that is
        the phone itself, when it has acknowledged our data or sent its own since the last look: then this socket
        is not pinged this time, at most MAX_SKIPS times in a row. An open crowd screen gets ~5 frames a second:
        of the 250 pings and pongs a second uvicorn sends to 5,000 such sockets, two in three go. A quiet socket
        is pinged as before, and one whose pong does not come within the timeout is closed (1011). A peer that
        is a proxy we trust (deploy/nginx.conf) is always pinged: its ACKs are its own, not the phone's."""
        if self.skipped < MAX_SKIPS and not self.close_sent and not self.transport.is_closing() \
                and not behind_proxy(self.config.proxy_headers, self.config.forwarded_allow_ips,
                                     self.client[0] if self.client else None):
            seen = peer_traffic(self.transport)
            if seen is not None and seen != self.heard:
                self.heard = seen
                self.skipped += 1
                self.ping_timer = None
                self.schedule_ping()
                return
        self.skipped = 0
        super().send_keepalive_ping()

    def handle_pong(self, event: Any) -> None:
        awaited = self.pending_ping_payload is not None and bytes(event.data) == self.pending_ping_payload
        super().handle_pong(event)
        if awaited:  # the ping and its pong are not the peer's own traffic: the next look must see new bytes
            self.heard = peer_traffic(self.transport)

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
