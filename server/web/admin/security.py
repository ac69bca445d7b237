"""No caching of any back-office response, and the two kinds of CSRF token.

The security headers (CSP, frame and referrer policy…) come from the app-wide policy in
server/plumbing/headers.py.

Signed-in forms carry `sessions.csrf_token(policy, session_id)`; the forms used before a
session exists (sign-in, accepting an invitation) use a double-submit cookie instead.
"""

from __future__ import annotations

import hmac
import re
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.domain.accounts import sessions

HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"cache-control", b"no-store"),)
PRE_SESSION_COOKIE = "sq_csrf"
CSRF_FIELD = "csrf"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class NoStoreMiddleware:
    """Pure ASGI: `Cache-Control: no-store` on every response start (replacing what the endpoint set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in HEADERS}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*kept, *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CsrfError(Exception):
    """A POST without the right token: refused with 403 before anything is read or written."""


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def session_token(request: Request) -> str:
    return sessions.csrf_token(request.app.state.session_policy, request.state.session_id)


def check_session_token(request: Request, form: FormData) -> None:
    session_id = getattr(request.state, "session_id", None)
    if not session_id or not _same(form.get(CSRF_FIELD), session_token(request)):
        raise CsrfError()


def pre_session_token(request: Request) -> str:
    """The double-submit token: the one already in the browser's cookie, else a new one."""
    existing = request.cookies.get(PRE_SESSION_COOKIE, "")
    return existing if _TOKEN.match(existing) else secrets.token_urlsafe(32)


def set_pre_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(PRE_SESSION_COOKIE, token, path="/admin", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def check_pre_session_token(request: Request, form: FormData) -> None:
    cookie = request.cookies.get(PRE_SESSION_COOKIE, "")
    if not _TOKEN.match(cookie) or not _same(form.get(CSRF_FIELD), cookie):
        raise CsrfError()
