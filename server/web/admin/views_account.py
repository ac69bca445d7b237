"""Sign-in and sign-out, accepting an invitation, personal API tokens, and the dashboard."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.accounts import service as accounts
from server.domain.accounts import sessions
from server.domain.errors import Invalid, RateLimited
from server.domain.merchants import service as merchants
from server.plumbing.auth import SESSION_COOKIE, client_ip
from server.web.admin import security
from server.web.admin import views_dashboard as festival_dashboard
from server.web.admin.common import (
    Values,
    db_of,
    form_list,
    form_str,
    page,
    posted,
    read_form,
    redis_of,
    render,
    see_other,
    session_actor,
    signed_in,
)

_NEXT = re.compile(r"^/admin/[A-Za-z0-9/_.-]{0,200}$")


def _safe_next(value: str) -> str:
    """Only a back-office path of ours (never another site, never `//host`)."""
    return value if _NEXT.match(value) and "//" not in value and ".." not in value else "/admin/"


def _set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    policy = request.app.state.session_policy
    response.set_cookie(SESSION_COOKIE, sessions.cookie_value(policy, session_id), max_age=policy.absolute_seconds,
                        path="/admin", httponly=True, samesite="lax", secure=request.url.scheme == "https")


def _clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/admin", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")


async def _start_session(request: Request, account_id: str, target: str) -> Response:
    policy, redis = request.app.state.session_policy, redis_of(request)
    previous = sessions.session_id_from_cookie(policy, request.cookies.get(SESSION_COOKIE))
    if previous:  # a fresh session id at every sign-in: no session fixation
        await sessions.destroy(redis, previous)
    session_id = await sessions.create(redis, policy, account_id)
    response = see_other(target)
    _set_session_cookie(request, response, session_id)
    return response


@page
async def login_form(request: Request) -> Response:
    if (await session_actor(request)).signed_in:
        return see_other("/admin/")
    values = Values({"next": _safe_next(request.query_params.get("next", ""))})
    return render(request, "login.html", {"values": values}, pre_session=True)


@page
async def login(request: Request) -> Response:
    form = await read_form(request)
    security.check_pre_session_token(request, form)
    email, password = form_str(form, "email", 320), form_str(form, "password", 1000)
    target = _safe_next(form_str(form, "next", 300))
    values = Values({"email": email, "next": target})
    try:
        account = await accounts.authenticate(db_of(request), redis_of(request), email, password,
                                              client_ip(request))
    except Invalid as exc:
        return render(request, "login.html", {"values": values, "errors": exc.fields}, 422, pre_session=True)
    except RateLimited as exc:
        minutes = max(1, (exc.retry_after + 59) // 60)
        return render(request, "login.html", {"values": values, "errors": {"email": "rate_limited"},
                                              "minutes": minutes}, 429,
                      headers={"Retry-After": str(exc.retry_after)}, pre_session=True)
    return await _start_session(request, account.id, target)


@page
async def logout(request: Request) -> Response:
    actor, _ = await posted(request)
    await sessions.destroy(redis_of(request), request.state.session_id, actor.account_id)
    response = see_other("/admin/login?ok=signed_out")
    _clear_session_cookie(request, response)
    return response


@page
async def logout_everywhere(request: Request) -> Response:
    actor, _ = await posted(request)
    assert actor.account_id is not None
    await sessions.destroy_all(redis_of(request), actor.account_id)
    response = see_other("/admin/login?ok=signed_out_everywhere")
    _clear_session_cookie(request, response)
    return response


async def _invitation_page(request: Request, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    token = request.path_params["token"]
    invitation = await accounts.pending_invitation(db_of(request), token)  # unknown, used or expired: 404
    return render(request, "invitation.html", {"token": token, "invitation": invitation, "errors": errors or {}},
                  status_code, pre_session=True)


@page
async def invitation_form(request: Request) -> Response:
    return await _invitation_page(request)


@page
async def accept_invitation(request: Request) -> Response:
    form = await read_form(request)
    security.check_pre_session_token(request, form)
    token = request.path_params["token"]
    password, again = form_str(form, "password", 1000), form_str(form, "password2", 1000)
    if password != again:
        return await _invitation_page(request, {"password2": "password_mismatch"}, 422)
    try:
        account = await accounts.accept_invitation(db_of(request), token, password)
    except Invalid as exc:
        return await _invitation_page(request, exc.fields, 422)
    return await _start_session(request, account.id, "/admin/?ok=welcome")


@page
async def dashboard(request: Request) -> Response:
    actor = await signed_in(request)
    if actor.role != "merchant":
        return await festival_dashboard.operator_home(request, actor)
    return render(request, "dashboard.html", {"shops": await merchants.of_actor(db_of(request), actor)})


# ---------------------------------------------------------------- personal API tokens

async def _tokens_page(request: Request, status_code: int = 200, **context: object) -> Response:
    actor = await signed_in(request)
    tokens = await accounts.list_tokens(db_of(request), actor)
    return render(request, "tokens.html", {"tokens": tokens, "scopes": authz.SCOPES, "created": None,
                                           **context}, status_code)


@page
async def tokens(request: Request) -> Response:
    return await _tokens_page(request)


@page
async def create_token(request: Request) -> Response:
    actor, form = await posted(request)
    try:
        created = await accounts.create_token(db_of(request), actor, form_str(form, "name", 200),
                                              form_list(form, "scopes"))
    except Invalid as exc:
        return await _tokens_page(request, 422, values=Values.of_form(form), errors=exc.fields)
    # the secret is shown in this response only; it is stored hashed
    return await _tokens_page(request, created=created)


@page
async def revoke_token(request: Request) -> Response:
    actor, _ = await posted(request)
    await accounts.revoke_token(db_of(request), actor, request.path_params["token_id"])
    return see_other("/admin/tokens?ok=revoked")
