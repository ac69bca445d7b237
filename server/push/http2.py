"""HTTP/2 to the push services that speak it: a few multiplexed TLS connections per service, built on `h2`.

Why `h2` directly rather than httpx (which uses the same `h2` underneath): a fan-out is nothing but small
POSTs, and httpx's request machinery measured 1.0-3.3 ms of CPU per POST here (server/push/sender.py), where
this connection adds ~0.1 ms to h2's own framing.  And the fan-out needs what a general client hides: which
streams a GOAWAY left unprocessed (safe to send again at once: RFC 9113 §6.8), REFUSED_STREAM (likewise), the
peer's SETTINGS_MAX_CONCURRENT_STREAMS, and dialling only the addresses the SSRF guard checked.

Errors are typed by what they mean for duplicates: `NotProcessed` (the service promises it did nothing with
the request: retried here on another connection) and `MaybeProcessed` (it may have: the fan-out retries it
later, inside its documented in-flight bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h2.stream
from hpack import NeverIndexedHeaderTuple

from server.push.header_encoding import RepeatingHeadersEncoder

READ_SIZE = 65_536
DEFAULT_STREAMS = 100  # until the peer's SETTINGS say otherwise (RFC 9113 recommends at least 100)


class NotProcessed(Exception):
    """The request was not acted on (above a GOAWAY's last stream id, REFUSED_STREAM, or never sent)."""


class MaybeProcessed(Exception):
    """The request may have reached the push service (connection lost, stream reset, protocol error)."""


class Unsendable(Exception):
    """The request's header block could not be encoded: nothing of it was sent, and sending it again will not
    help."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Stream:
    done: asyncio.Future[Response]
    deadline: float  # loop time by which the answer must have come (the connection's watchdog enforces it)
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


# a frame's 9-byte header (RFC 9113 §4.1): 24-bit length (as 16 + 8 bits), type, flags, stream id
_FRAME_HEAD = struct.Struct(">HBBBL")
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4


class _FanoutH2(h2.connection.H2Connection):
    """h2's connection, with `send_request` for a push message."""

    def send_request(self, stream_id: int, headers: list[Any], body: bytes, authority: bytes) -> bool:
        """Open `stream_id` with a request's HEADERS and one DATA frame that ends it: h2's `send_headers` then
        `send_data`, with the same state transitions and flow-control accounting, but the frames written
        straight from the header block and the body.  h2's own calls pass over the headers three more times
        and build, check and serialize a frame object each, ~20 us a message (/tmp micro).  Returns False,
        having done nothing, when the body is empty or does not fit one frame and the windows: the caller then
        uses `send_headers` and `send_data`."""
        size = len(body)
        if (not 0 < size <= self.max_outbound_frame_size or stream_id in self.streams
                or size > self.outbound_flow_control_window or size > self.remote_settings.initial_window_size):
            return False
        limit = self.remote_settings.max_concurrent_streams
        if self.open_outbound_streams + 1 > limit:
            raise h2.exceptions.TooManyStreamsError(f"Max outbound streams is {limit}")
        block = self.encoder.encode(headers)  # before any state transition: if it raises, no stream is open
        self.state_machine.process_input(h2.connection.ConnectionInputs.SEND_HEADERS)
        stream = self._begin_new_stream(stream_id, h2.connection.AllowedStreamIDs.ODD)
        stream.state_machine.process_input(h2.stream.StreamInputs.SEND_HEADERS)
        stream._authority = authority
        stream.request_method = b"POST"
        self.state_machine.process_input(h2.connection.ConnectionInputs.SEND_DATA)
        stream.state_machine.process_input(h2.stream.StreamInputs.SEND_DATA)
        stream.state_machine.process_input(h2.stream.StreamInputs.SEND_END_STREAM)
        stream.outbound_flow_control_window -= size
        self.outbound_flow_control_window -= size
        out = self._data_to_send
        step = self.max_outbound_frame_size
        for start in range(0, len(block), step):  # HEADERS, then CONTINUATION for a block beyond one frame
            part = block[start:start + step]
            kind = _HEADERS if start == 0 else _CONTINUATION
            out += _FRAME_HEAD.pack(len(part) >> 8, len(part) & 0xFF, kind,
                                    _END_HEADERS if start + step >= len(block) else 0, stream_id)
            out += part
        out += _FRAME_HEAD.pack(size >> 8, size & 0xFF, _DATA, _END_STREAM, stream_id)
        out += body
        return True


class Http2Connection:
    """One TLS connection speaking h2; `request` multiplexes up to the peer's concurrent-stream limit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str) -> None:
        self._reader = reader
        self._writer = writer
        self.authority = authority
        # Our own headers, built once per campaign and service: h2's per-request validation and normalisation
        # were a third of a message's CPU.  Normalisation also marks Authorization never-indexed, so the same
        # VAPID token was Huffman-coded into every request instead of being sent once into the HPACK table
        # (a connection carries only our own requests, so there is no secret for compression to leak).
        self._h2 = _FanoutH2(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self._h2.encoder = RepeatingHeadersEncoder()
        self._authority = authority.encode()
        self._streams: dict[int, _Stream] = {}
        self._window = asyncio.Event()  # set when the peer opens its flow-control window
        self.max_streams = DEFAULT_STREAMS
        self.active = 0  # streams open or being opened on this connection
        self.usable = True  # False after GOAWAY or an error: finish what is open, start nothing new
        self.on_change: Callable[[], None] = lambda: None  # a stream finished or the limit moved
        self.settings_received = asyncio.Event()  # the peer's first SETTINGS: its stream limit is known
        self._flush_soon: asyncio.Handle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._h2.initiate_connection()
        self._flush()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, address: str, port: int, server_name: str, authority: str, context: ssl.SSLContext,
                   connect_within: float) -> Http2Connection | None:
        """Dial `address`; None if the service chose HTTP/1.1 in ALPN (the caller falls back)."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=context, server_hostname=server_name), connect_within)
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return None
        connection = cls(reader, writer, authority)
        try:  # the server's preface is its SETTINGS: wait for its stream limit before opening any stream
            await asyncio.wait_for(connection.settings_received.wait(), connect_within)
        except TimeoutError:
            await connection.aclose()
            raise
        if connection.closed:
            raise ConnectionError("the push service closed the connection during its preface")
        return connection

    @property
    def free(self) -> int:
        return self.max_streams - self.active if self.usable else 0

    def _flush(self) -> None:
        """Write what h2 has queued, now."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        data = self._h2.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    def _flush_later(self) -> None:
        """Write what h2 has queued once the tasks ready now have run: the frames of every stream opened (or
        answered) in one turn of the event loop go out in one TLS record and one send, where a write per frame
        was a sixth of a worker's CPU (bench/push_fanout.py --py-spy)."""
        if self._flush_soon is None:
            self._flush_soon = asyncio.get_running_loop().call_soon(self._flush)

    async def request(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes,
                      answer_within: float) -> Response:
        """POST `body`; the caller took one of `free` first (`active` counts it)."""
        loop = asyncio.get_running_loop()
        stream = _Stream(loop.create_future(), loop.time() + answer_within)
        try:
            if not self.usable:
                raise NotProcessed("connection is closing")
            try:
                stream_id = self._h2.get_next_available_stream_id()
                # the path and length differ per message: kept out of the HPACK table, where they evicted the
                # headers every message repeats (the VAPID Authorization above all), so those stay one byte each
                fields = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", self._authority),
                          NeverIndexedHeaderTuple(b":path", path.encode()),
                          NeverIndexedHeaderTuple(b"content-length", str(len(body)).encode()), *headers]
                whole = self._h2.send_request(stream_id, fields, body, self._authority)  # a push message's case
                if not whole:
                    self._h2.send_headers(stream_id, fields)
            except h2.exceptions.H2Error as exc:
                raise NotProcessed(f"cannot open a stream: {exc}") from None
            except Exception as exc:  # the header block (or path) could not be encoded: nothing was sent
                self._abandon(stream_id)
                raise Unsendable(f"cannot encode the request: {exc!r}") from None
            self._streams[stream_id] = stream
            self._watch(stream.deadline)
            if not whole:  # waits for flow-control window
                try:
                    async with asyncio.timeout_at(stream.deadline):
                        await self._send_body(stream_id, body)
                except TimeoutError:
                    self._reset(stream)
                    raise
            self._flush_later()
            try:
                return await stream.done
            except asyncio.CancelledError:
                self._reset(stream)
                raise
        finally:
            self.active -= 1
            self.on_change()

    def _abandon(self, stream_id: int) -> None:
        """After a header block failed to encode.  h2's `send_headers` opens the stream before it encodes: that
        stream is closed here without an RST_STREAM, which for a stream the service never saw is a connection
        error (RFC 9113 §6.4) and would fail every other stream in flight; left open, it counted against the
        service's stream limit for the connection's life.  And the encoder may have added earlier headers of
        the block to its table and not sent them, so the service's table no longer matches ours: the
        connection finishes its open streams and starts no more."""
        stream = self._h2.streams.get(stream_id)
        if stream is not None and stream.open:
            stream.reset_stream(h2.errors.ErrorCodes.CANCEL)  # the stream's own close; its frame is not sent
        self.usable = False

    def _watch(self, deadline: float) -> None:
        """One timer per connection instead of one per stream: when it fires, the streams past their deadline
        fail with TimeoutError (and are reset), and it is set again for the earliest deadline left.  A timer
        and a shielded future per message were a few percent of a worker's CPU."""
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._watchdog = None
        now = asyncio.get_running_loop().time()
        late = [(stream_id, stream) for stream_id, stream in self._streams.items() if stream.deadline <= now]
        for stream_id, stream in late:
            del self._streams[stream_id]
            if not stream.done.done():
                stream.done.set_exception(TimeoutError(f"no answer on stream {stream_id} in time"))
            with contextlib.suppress(h2.exceptions.H2Error):
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        if late:
            self._flush()
        if self._streams:
            self._watch(min(stream.deadline for stream in self._streams.values()))

    async def _send_body(self, stream_id: int, body: bytes) -> None:
        view = memoryview(body)
        while view:
            if stream_id not in self._streams or self._streams[stream_id].done.done():
                return  # reset or answered early
            window = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
            if window <= 0:
                self._window.clear()
                await self._window.wait()
                continue
            chunk, view = view[:window], view[window:]
            self._h2.send_data(stream_id, bytes(chunk), end_stream=not view)
            self._flush_later()
        if not body:
            self._h2.end_stream(stream_id)

    def _reset(self, stream: _Stream) -> None:
        if stream.done.done() and not stream.done.cancelled():
            stream.done.exception()  # the watchdog's TimeoutError, if it came first: nobody else reads it
        for stream_id, known in list(self._streams.items()):
            if known is stream:
                del self._streams[stream_id]
                with contextlib.suppress(h2.exceptions.H2Error):
                    self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                    self._flush()

    async def _read_loop(self) -> None:
        failure: Exception = MaybeProcessed("connection closed")
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    break
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:  # an invalid frame: this connection is done
                    failure = MaybeProcessed(f"protocol error: {exc}")
                    with contextlib.suppress(h2.exceptions.H2Error):
                        self._h2.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
                    self._flush()
                    break
                for event in events:
                    self._on(event)
                self._flush_later()
        except (OSError, ssl.SSLError) as exc:
            failure = MaybeProcessed(f"connection lost: {exc}")
        finally:
            self.usable = False
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            for stream in self._streams.values():
                if not stream.done.done():
                    stream.done.set_exception(failure)
            self._streams.clear()
            self._window.set()
            self.settings_received.set()
            self.on_change()
            self._writer.close()

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                for name, value in event.headers or ():
                    key = name.decode() if isinstance(name, bytes) else str(name)
                    text = value.decode() if isinstance(value, bytes) else str(value)
                    if key == ":status":
                        stream.status = int(text)
                    else:
                        stream.headers[key] = text
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self._streams.get(event.stream_id)
            if stream is not None and len(stream.body) < 4096:
                stream.body += event.data or b""
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None and not stream.done.done():
                stream.done.set_result(Response(stream.status, stream.headers, bytes(stream.body)))
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None and not stream.done.done():
                code = event.error_code
                error: Exception = (NotProcessed("stream refused") if code == h2.errors.ErrorCodes.REFUSED_STREAM
                                    else MaybeProcessed(f"stream reset ({code!r})"))
                stream.done.set_exception(error)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.usable = False
            last = event.last_stream_id if event.last_stream_id is not None else 0
            for stream_id in [s for s in self._streams if s > last]:
                stream = self._streams.pop(stream_id)
                if not stream.done.done():
                    stream.done.set_exception(NotProcessed(f"GOAWAY after stream {last}"))
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            changed = event.changed_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
            if changed is not None:
                self.max_streams = max(0, int(changed.new_value))
            self.settings_received.set()
        elif isinstance(event, h2.events.WindowUpdated):
            self._window.set()
        if isinstance(event, h2.events.StreamEnded | h2.events.StreamReset | h2.events.ConnectionTerminated
                      | h2.events.RemoteSettingsChanged):
            self.on_change()

    def close_soon(self) -> None:
        """Close a connection nothing uses any more (after GOAWAY), without waiting."""
        self.usable = False
        self._writer.close()

    async def aclose(self) -> None:
        self.usable = False
        with contextlib.suppress(h2.exceptions.H2Error):
            self._h2.close_connection()
            self._flush()
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    @property
    def closed(self) -> bool:
        return self._task.done()


Dial = Callable[[], Awaitable["Http2Connection | None"]]


class Http2Pool:
    """Up to `size` connections to one push service, each carrying up to its peer's stream limit.

    `acquire` returns a connection with a stream reserved for the caller, or None once the service turned out
    to speak only HTTP/1.1 (the caller then uses its HTTP/1.1 client for this service).
    """

    def __init__(self, dial: Dial, size: int) -> None:
        self._dial = dial
        self._size = max(1, size)
        self._connections: list[Http2Connection] = []
        self._opening = 0
        self._waiters: list[asyncio.Future[None]] = []
        self.http1 = False

    def _wake(self) -> None:
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def acquire(self) -> Http2Connection | None:
        if len(self._connections) == 1:  # the usual case: one connection with streams to spare
            only = self._connections[0]
            if only.free > 0 and not only.closed:
                only.active += 1
                return only
        while True:
            for spent in [c for c in self._connections if c.closed or not (c.usable or c.active)]:
                self._connections.remove(spent)
                if not spent.closed:
                    spent.close_soon()
            best = max((c for c in self._connections if c.free > 0), key=lambda c: c.free, default=None)
            if best is not None:
                best.active += 1
                return best
            if self.http1:
                return None
            if len(self._connections) + self._opening < self._size:
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self._opening += 1
        try:
            connection = await self._dial()
        finally:
            self._opening -= 1
            self._wake()
        if connection is None:
            self.http1 = True
            return None
        connection.on_change = self._wake
        self._connections.append(connection)
        connection.active += 1
        return connection

    async def aclose(self) -> None:
        connections, self._connections = self._connections, []
        for connection in connections:
            await connection.aclose()
        self._wake()
