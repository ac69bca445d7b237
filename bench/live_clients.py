"""A share of bench/crowd_live.py's subscribers, in a process of its own (the bench starts several, so that
the client side is not what limits the measurement).

    python bench/live_clients.py --url ws://127.0.0.1:PORT/graphql --count 1250 --district GID --area GID
                                 [--deflate] [--parallel 50] [--impl light|websockets] [--poll-ms 0]

Opens `--count` graphql-transport-ws subscriptions to crowdUpdates of the district, then answers commands
on stdin, one per line, with one JSON line on stdout:

    count   -> {"counts": [messages received by each subscriber so far]}
    has N   -> {"has": whether every subscriber's newest message shows occupancy N in --area}
    dump    -> {"arrivals": [[[time.time() on arrival, occupancy of --area or null, type], ...] per subscriber],
                "ended": [why each subscriber's socket ended, or null]}   (and forgets what it dumped)
    quit    -> closes every socket and exits

The receive side is kept as cheap as a client can be, because on one small machine every microsecond a client
spends on a frame is a microsecond the web process does not get, and a late stamp reads as server latency. A
socket is an asyncio.Protocol speaking RFC 6455 itself: `data_received` stamps time.time() first, then only
splits the bytes into frames (text frames kept as raw bytes; pings answered with pongs). Nothing is decoded,
no task or future is woken per frame; JSON is parsed after the window (dump). The event loop is uvloop's (as the
web processes'), whose read path is C. (The `websockets` client did the
same job with its sans-I/O parser, a message queue and a task woken per message: its stamp came after all of
that, for every socket the event loop had ready before it. `--impl websockets` still runs that client, so that
bench/crowd_live.py --compare-clients can show what the client side costs.)

On loopback the server's `send` also runs the receiving socket's TCP input and wakes the process waiting for it, and
the web process is charged for both; on a network the phones' kernels do that. With `--poll-ms N` (after the
subscriptions are open) the event loop does not wait in epoll between frames: it naps N ms, then looks for ready
sockets without waiting, so a server's send finds nobody to wake. Arrivals are stamped up to N ms later.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import sys
import time
import zlib
from typing import Any
from urllib.parse import urlsplit

SUBSCRIPTION = ("subscription($d: ID!) { crowdUpdates(districtId: $d) "
                "{ sentAt areas { areaId crowd { occupancy } } } }")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame from the client (RFC 6455 §5.3: every client frame is masked)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (size // 4 + 1))[:size], "big")
              ).to_bytes(size, "big") if size else b""
    return head + mask + masked


class Client(asyncio.Protocol):
    """One socket, one subscription. `arrivals`: (time.time() when the bytes came in, compressed?, payload)."""

    def __init__(self, host: str, path: str, deflate: bool, headers: dict[str, str] | None = None) -> None:
        self.host, self.path, self.deflate, self.headers = host, path, deflate, headers or {}
        self.transport: asyncio.Transport | None = None
        self.key = base64.b64encode(os.urandom(16))
        self.handshake: bytes | None = b""  # the HTTP answer read so far; None once the socket is open
        self.buffer = b""
        self.arrivals: list[tuple[float, bool, bytes]] = []
        self.decoded: list[str] = []  # the text of arrivals[:len(decoded)], decoded after the fact
        self.ended: str | None = None
        self.inflater: Any = None  # permessage-deflate, when the server agreed (decompressed at dump)
        self.waiter: asyncio.Future[None] | None = None  # open() waiting for its next frame
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------------ the receive path (kept lean)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.handshake is not None:
            self._handshake(data)
            return
        buf = self.buffer + data if self.buffer else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, size = buf[pos], buf[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if end - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif size == 127:
                if end - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if end - pos < head + size:
                break
            opcode = b0 & 0x0F
            payload = buf[pos + head:pos + head + size]
            pos += head + size
            if opcode == TEXT and b0 & 0x80:
                self.received(now, bool(b0 & 0x40), payload)
            else:
                self._control(b0, opcode, payload)
        self.buffer = buf[pos:]

    def received(self, now: float, compressed: bool, payload: bytes) -> None:
        """A whole text frame: kept for later (bench/load.py's shoppers handle theirs as they come)."""
        self.arrivals.append((now, compressed, payload))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _control(self, b0: int, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == PING:
            self.transport.write(client_frame(PONG, payload))
        elif opcode == CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.ended = f"closed by the server ({code})"
            self.transport.write(client_frame(CLOSE, payload[:2]))
            self.transport.close()
        elif opcode != PONG:  # the server sends whole text frames; anything else is a finding
            self.ended = f"unexpected frame: first byte {b0:#x}"
            self.transport.close()

    # ------------------------------------------------------------------ opening

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {self.key.decode()}", "Sec-WebSocket-Version: 13",
                 "Sec-WebSocket-Protocol: graphql-transport-ws"]
        if self.deflate:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _handshake(self, data: bytes) -> None:
        assert self.handshake is not None
        self.handshake += data
        head, found, rest = self.handshake.partition(b"\r\n\r\n")
        if not found:
            return
        status, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        if not status.startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept:
            self.opened.set_exception(RuntimeError(f"handshake refused: {status}"))
            return
        if "permessage-deflate" in headers.get("sec-websocket-extensions", ""):
            self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.handshake = None
        self.opened.set_result(None)
        if rest:
            self.data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ended is None:
            self.ended = f"connection lost: {exc!r}"
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.ended))
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(self.ended))

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(TEXT, text.encode()))

    async def next_message(self) -> dict[str, Any]:
        while not self.arrivals:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        _, compressed, payload = self.arrivals.pop(0)
        message: dict[str, Any] = json.loads(self.text(compressed, payload))
        return message

    def text(self, compressed: bool, payload: bytes) -> str:
        if compressed:  # in order, once each: the server's compression context runs on from message to message
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        return payload.decode()

    def texts(self) -> list[str]:
        """Every arrival's text (decoded once each, in order)."""
        for _, compressed, payload in self.arrivals[len(self.decoded):]:
            self.decoded.append(self.text(compressed, payload))
        return self.decoded

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.transport.write(client_frame(CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()


async def open_client(url: str, district: str, deflate: bool) -> Client:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(f"{host}:{port}", parts.path or "/", deflate),
                                             host, port)
    await asyncio.wait_for(client.opened, 120)
    client.send_text('{"type":"connection_init","payload":{}}')
    async with asyncio.timeout(120):
        ack = await client.next_message()
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"expected connection_ack, got {ack}")
    client.send_text(json.dumps({"id": "1", "type": "subscribe",
                                 "payload": {"query": SUBSCRIPTION, "variables": {"d": district}}}))
    async with asyncio.timeout(120):
        first = await client.next_message()
    if first.get("type") != "next" or first["payload"].get("errors"):
        raise RuntimeError(f"expected the current level first, got {first}")
    return client


class WebsocketsClient:
    """The same subscriber on the `websockets` library's asyncio client (one task per socket, woken per message)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bool, str]] = []
        self.decoded: list[str] = []
        self.ended: str | None = None
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, url: str, district: str, deflate: bool) -> WebsocketsClient:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        ws = self.ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")],
                                     compression="deflate" if deflate else None, proxy=None, open_timeout=120,
                                     ping_interval=None, close_timeout=2, max_queue=1024)
        await ws.send('{"type":"connection_init","payload":{}}')
        ack = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {ack}")
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": SUBSCRIPTION, "variables": {"d": district}}}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if first.get("type") != "next" or first["payload"].get("errors"):
            raise RuntimeError(f"expected the current level first, got {first}")
        self.task = asyncio.create_task(self._pump())
        return self

    async def _pump(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:  # `dump` swaps the list: look it up each time
                self.arrivals.append((time.time(), False, raw if isinstance(raw, str) else raw.decode()))
            self.ended = f"closed by the server ({self.ws.close_code})"
        except ConnectionClosed as exc:
            self.ended = f"connection lost: {exc}"

    def texts(self) -> list[str]:
        self.decoded = [text for _, _, text in self.arrivals]
        return self.decoded

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        with contextlib.suppress(Exception):
            self.ws.transport.close()


def parse(text: str, area: str) -> tuple[int | None, str]:
    message = json.loads(text)
    kind = str(message.get("type"))
    if kind != "next" or message.get("payload", {}).get("errors"):
        return None, kind
    for item in message["payload"]["data"]["crowdUpdates"]["areas"]:
        if item["areaId"] == area:
            return int(item["crowd"]["occupancy"]), kind
    return None, kind


async def main(args: argparse.Namespace) -> None:
    gate = asyncio.Semaphore(args.parallel)

    async def one() -> Client | WebsocketsClient:
        async with gate:
            if args.impl == "websockets":
                return await WebsocketsClient().open(args.url, args.district, args.deflate)
            return await open_client(args.url, args.district, args.deflate)

    results = await asyncio.gather(*(one() for _ in range(args.count)), return_exceptions=True)
    clients = [r for r in results if isinstance(r, Client | WebsocketsClient)]
    failed = [repr(r) for r in results if isinstance(r, BaseException)]
    print(json.dumps({"ready": len(clients), "failed": failed[:3]}), flush=True)
    loop = asyncio.get_running_loop()
    if args.poll_ms > 0:
        nap = args.poll_ms / 1000

        def poll() -> None:
            # asleep here, not in epoll: a frame arriving meanwhile wakes nobody. A callback always pending
            # makes the loop look at its sockets without waiting.
            time.sleep(nap)
            loop.call_soon(poll)

        loop.call_soon(poll)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        out: dict[str, Any]
        if line == "count":
            out = {"counts": [len(c.arrivals) for c in clients]}
        elif line.startswith("has "):
            value = int(line.split()[1])
            out = {"has": all(c.arrivals and parse(c.texts()[-1], args.area)[0] == value for c in clients)}
        elif line == "dump":
            out = {"arrivals": [[[t, *parse(text, args.area)]
                                 for (t, _, _), text in zip(c.arrivals, c.texts(), strict=True)] for c in clients],
                   "ended": [c.ended for c in clients]}
            for c in clients:
                c.arrivals, c.decoded = [], []  # type: ignore[assignment]
        elif line == "quit":
            break
        else:
            out = {"error": f"unknown command {line!r}"}
        sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    for c in clients:
        c.close()
    await asyncio.sleep(0.1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--district", required=True)
    parser.add_argument("--area", required=True)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--impl", choices=("light", "websockets"), default="light")
    parser.add_argument("--poll-ms", type=float, default=0.0,
                        help="nap N ms between looks at the sockets instead of waiting in epoll (see above)")
    parser.add_argument("--asyncio-loop", action="store_true",
                        help="the standard library's event loop instead of uvloop (whose C read path costs the "
                             "client less per frame; the web processes run on it too)")
    arguments = parser.parse_args()
    if arguments.asyncio_loop:
        asyncio.run(main(arguments))
    else:
        import uvloop

        uvloop.run(main(arguments))
