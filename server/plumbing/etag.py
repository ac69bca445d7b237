"""ETags for cacheable GET responses: a phone revalidates and gets a tiny 304 when nothing changed.

Public GraphQL reads are marked `no-cache` (store, but ask first), so a write
shows up on the very next request, while an unchanged answer costs a phone on
a weak network a few hundred bytes instead of the whole document.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ETagMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            await self._finish(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, buffer)

    @staticmethod
    async def _finish(scope: Scope, start: Message, body: bytes, send: Send) -> None:
        headers = MutableHeaders(scope=start)
        cacheable = start["status"] == 200 and "no-cache" in headers.get("cache-control", "")
        if cacheable:
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            headers["etag"] = etag
            wanted = Headers(scope=scope).get("if-none-match", "")
            if etag in [t.strip() for t in wanted.split(",")]:
                del headers["content-length"]
                start["status"] = 304
                await send(start)
                await send({"type": "http.response.body", "body": b""})
                return
        await send(start)
        await send({"type": "http.response.body", "body": body})
