"""Push services over TLS for the HTTP/2 tests, with a test CA from trustme.

- `RunningTlsPushService`: the real test push service (VAPID checked, body decrypted) behind hypercorn, offering
  h2 and http/1.1 by ALPN (or only one of them) with a configurable SETTINGS_MAX_CONCURRENT_STREAMS.
- `MisbehavingH2Service`: a bare h2 server (the `h2` library's server side) that can answer 201 and then send
  GOAWAY mid-batch, reset every stream, send an invalid frame, answer 429, or hold every answer until released.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.routing import Route

from server.services import embedded
from tests.push.push_service import PushService


@dataclass
class TestCA:
    __test__ = False  # not a test class

    ca: trustme.CA
    ca_file: str
    cert_file: str

    def server_context(self, alpn: list[str]) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file)
        context.set_alpn_protocols(alpn)
        return context


def make_ca(folder: Path) -> TestCA:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file = folder / "ca.pem", folder / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    return TestCA(ca, str(ca_file), str(cert_file))


class RunningTlsPushService:
    def __init__(self, ca: TestCA, *, alpn: tuple[str, ...] = ("h2", "http/1.1"), max_streams: int = 100) -> None:
        self.service = PushService()
        self._ca = ca
        self._alpn = list(alpn)
        self._max_streams = max_streams
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> PushService:
        port = embedded.free_port()
        self.service.url = f"https://127.0.0.1:{port}"
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.certfile = config.keyfile = self._ca.cert_file
        config.alpn_protocols = self._alpn
        config.h2_max_concurrent_streams = self._max_streams
        config.loglevel = "WARNING"
        config.accesslog = None
        app = Starlette(routes=[Route("/push/{token}", self.service.handle, methods=["POST"])])
        self._task = asyncio.create_task(serve(app, config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]
        for _ in range(500):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.01)
        return self.service

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


@dataclass
class MisbehavingH2Service:
    """mode: "ok", "goaway" (answer `goaway_after` streams per connection, then GOAWAY), "reset" (RST_STREAM
    every stream), "invalid" (an invalid frame on the first request), "429" (Retry-After), "hold" (answer only
    once `release` is set)."""

    ca: TestCA
    mode: str = "ok"
    goaway_after: int = 5
    max_streams: int = 100
    url: str = ""
    tokens: list[str] = field(default_factory=list)  # paths answered 201, in order
    connections: int = 0
    requests: int = 0
    resets: int = 0  # RST_STREAMs the client sent (a send that gave up waiting cancels its stream)
    body_bytes: int = 0  # request body bytes received, over all streams
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    async def start(self) -> MisbehavingH2Service:
        port = embedded.free_port()
        self.url = f"https://127.0.0.1:{port}"
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port,
                                                  ssl=self.ca.server_context(["h2"]))
        return self

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        writer.write(conn.data_to_send())
        paths: dict[int, str] = {}
        answered = 0
        goaway_last: int | None = None
        pending: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(65_536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        # header_encoding="utf-8" makes names and values str; h2's types say bytes
                        headers: dict[str, str] = dict(event.headers or [])  # type: ignore[arg-type]
                        paths[event.stream_id] = headers.get(":path", "")
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        self.body_bytes += len(event.data or b"")
                    elif isinstance(event, h2.events.StreamReset):
                        self.resets += 1
                    elif isinstance(event, h2.events.StreamEnded):
                        self.requests += 1
                        stream_id = event.stream_id
                        if self.mode == "reset":
                            conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                        elif self.mode == "invalid":
                            writer.write(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00")  # WINDOW_UPDATE 0
                        elif self.mode == "429":
                            conn.send_headers(stream_id, [(":status", "429"), ("retry-after", "120")],
                                              end_stream=True)
                        elif self.mode == "hold":
                            task = asyncio.create_task(self._answer_later(conn, writer, stream_id))
                            pending.add(task)
                            task.add_done_callback(pending.discard)
                        elif goaway_last is not None and stream_id > goaway_last:
                            continue  # left unanswered: the GOAWAY says it was not processed
                        else:
                            answered += 1
                            self.tokens.append(paths.get(stream_id, ""))
                            conn.send_headers(stream_id, [(":status", "201")], end_stream=True)
                            if self.mode == "goaway" and answered == self.goaway_after:
                                goaway_last = stream_id
                                conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=stream_id)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            for task in pending:
                task.cancel()
            writer.close()

    async def _answer_later(self, conn: h2.connection.H2Connection, writer: asyncio.StreamWriter,
                            stream_id: int) -> None:
        await self.release.wait()
        with contextlib.suppress(Exception):
            conn.send_headers(stream_id, [(":status", "201")], end_stream=True)
            writer.write(conn.data_to_send())
