"""The API explorer: a browser's GET on /graphql opens GraphiQL, served from the app's own vendored copy.

Strawberry's GraphiQL page loads its scripts from a public CDN, unreachable offline and in mainland
China, and it needs inline scripts; this page uses only files under /explorer/ (vendor/README.md
records their versions and licences), so it works anywhere and under the app's CSP.

Only a GET that asks for HTML and carries neither `query` nor `extensions` (a persisted query) is
the explorer's: every API client's request goes to GraphQL untouched.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

HERE = Path(__file__).parent
# The only files served: name under /explorer/ → (path, media type).
FILES = {
    "explorer.js": (HERE / "explorer.js", "text/javascript; charset=utf-8"),
    "explorer.css": (HERE / "explorer.css", "text/css; charset=utf-8"),
    "vendor/graphiql.min.js": (HERE / "vendor" / "graphiql.min.js", "text/javascript; charset=utf-8"),
    "vendor/graphiql.min.css": (HERE / "vendor" / "graphiql.min.css", "text/css; charset=utf-8"),
    "vendor/react.production.min.js": (HERE / "vendor" / "react.production.min.js", "text/javascript; charset=utf-8"),
    "vendor/react-dom.production.min.js": (HERE / "vendor" / "react-dom.production.min.js",
                                           "text/javascript; charset=utf-8"),
}


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str


@cache
def _load(name: str) -> _File:
    # Read and compressed once per process: the GraphiQL bundle is 3.5 MB, about 0.8 MB gzipped.
    path, media_type = FILES[name]
    body = path.read_bytes()
    return _File(body, gzip.compress(body, compresslevel=6, mtime=0),
                 '"' + hashlib.sha256(body).hexdigest()[:32] + '"', media_type)


def _send(request: Request, file: _File) -> Response:
    # Revalidated every time (an upgrade shows at once); unchanged files cost a 304.
    headers = {"cache-control": "no-cache", "etag": file.etag, "vary": "Accept-Encoding"}
    if file.etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(file.gzipped, media_type=file.media_type, headers=headers)
    return Response(file.body, media_type=file.media_type, headers=headers)


def _schema_file(sdl: str) -> _File:
    body = sdl.encode()
    return _File(body, gzip.compress(body, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                 "text/plain; charset=utf-8")


def wants_explorer(scope: Scope) -> bool:
    if scope["method"] not in ("GET", "HEAD"):
        return False
    params = QueryParams(scope.get("query_string", b""))
    return "query" not in params and "extensions" not in params and \
        "text/html" in Headers(scope=scope).get("accept", "")


class ExplorerGate:
    """In front of the GraphQL endpoint: a browser's plain GET gets the explorer page, all else GraphQL."""

    def __init__(self, graphql: ASGIApp, *, enabled: bool) -> None:
        self.graphql = graphql
        self.enabled = enabled
        self.page = (HERE / "page.html").read_bytes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.enabled and scope["type"] == "http" and wants_explorer(scope):
            response = Response(self.page, media_type="text/html; charset=utf-8",
                                headers={"cache-control": "no-cache", "vary": "Accept"})
            await response(scope, receive, send)
            return
        await self.graphql(scope, receive, send)


def explorer_routes(sdl: str) -> list[BaseRoute]:
    """The explorer's files; `sdl` is the schema the page documents (GraphiQL builds it in the browser)."""
    schema = _schema_file(sdl)

    async def explorer_file(request: Request) -> Response:
        name = request.path_params["path"]
        if name == "schema.graphql":
            return _send(request, schema)
        if name not in FILES:
            return Response("not found", status_code=404, media_type="text/plain")
        return _send(request, _load(name))

    return [Route("/explorer/{path:path}", explorer_file, methods=["GET", "HEAD"])]
