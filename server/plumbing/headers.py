"""The one security-header policy of the whole app, set on every HTTP response in one place.

Three kinds of route differ only in what a page may use: the shopper app (geolocation for "near me"),
the back office (the camera, for the code scanner) and the API with its explorer (no device at all;
fonts also from data: URLs, which the vendored GraphiQL stylesheet embeds). Scripts and styles come
only from the app itself everywhere: no inline script or style element, no eval. Nothing may frame
any page (frame-ancestors 'none'): there is no embedding use, and clickjacking needs one.

The header lists are computed once at import, so a response costs one dictionary look-up and a
list copy — the cached persisted-query answers pay the same. Headers an endpoint set under these
names are replaced, so no route can weaken the policy by accident.
"""

from __future__ import annotations

from collections.abc import Awaitable
from enum import Enum

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Kind(Enum):
    APP = "app"
    BACK_OFFICE = "back-office"
    API = "api"


_CSP_COMMON = ("default-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")
CSP = {
    Kind.APP: f"{_CSP_COMMON}; style-src 'self'; font-src 'self'",
    Kind.BACK_OFFICE: f"{_CSP_COMMON}; style-src 'self'; font-src 'self'",
    # The explorer's vendored GraphiQL stylesheet embeds its fonts as data: URLs.
    Kind.API: f"{_CSP_COMMON}; style-src 'self'; font-src 'self' data:",
}
# Every powerful feature is named, so "allowed" is an explicit choice per kind rather than a browser default.
_FEATURES = ("accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer",
             "microphone", "payment", "usb")
_ALLOWED = {Kind.APP: {"geolocation"}, Kind.BACK_OFFICE: {"camera"}, Kind.API: set()}
HSTS = "max-age=31536000"


def permissions_policy(kind: Kind) -> str:
    return ", ".join(f"{feature}=(self)" if feature in _ALLOWED[kind] else f"{feature}=()" for feature in _FEATURES)


def headers_for(kind: Kind, *, https: bool) -> tuple[tuple[bytes, bytes], ...]:
    pairs = [
        ("content-security-policy", CSP[kind]),
        ("permissions-policy", permissions_policy(kind)),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if https:
        pairs.append(("strict-transport-security", HSTS))
    return tuple((name.encode(), value.encode()) for name, value in pairs)


def kind_of(path: str) -> Kind:
    if path == "/admin" or path.startswith("/admin/"):
        return Kind.BACK_OFFICE
    if path == "/graphql" or path.startswith("/explorer/"):
        return Kind.API
    return Kind.APP


_HEADERS = {(kind, https): headers_for(kind, https=https) for kind in Kind for https in (False, True)}
_NAMES = frozenset(name for name, _ in _HEADERS[Kind.APP, True])


class SecurityHeadersMiddleware:
    """Pure ASGI, outermost: sets the policy on every response start, errors and 304s included.

    `https` is the scheme uvicorn reports: behind a proxy listed in FORWARDED_ALLOW_IPS that is the
    proxy's X-Forwarded-Proto, so HSTS is only sent where the browser really came over HTTPS.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: a WebSocket, open for hours, keeps no frame of this layer (server/api/live).
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = _HEADERS[kind_of(scope["path"]), scope.get("scheme") == "https"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # ASGI header names are lower-case (Starlette's responses make them so).
                headers = [pair for pair in message.get("headers", ()) if pair[0] not in _NAMES]
                headers += policy
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
