"""Shared machinery of the back office: locale, the signed-in actor, rendering, and domain errors as pages."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from server.domain import messages
from server.domain.actor import ANONYMOUS, Actor
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthenticated
from server.domain.i18n import LOCALES, canonical_locale, negotiate, pick
from server.domain.merchants.hours import SHANGHAI
from server.plumbing.auth import actor_of
from server.services.mongo import Doc
from server.web.admin import security

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "lang"
MAX_FIELDS = 300
Endpoint = Callable[[Request], Awaitable[Response]]

templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                                            autoescape=select_autoescape(default=True, default_for_string=True)))


# ---------------------------------------------------------------- request basics

def db_of(request: Request) -> AsyncDatabase[Doc]:
    db: AsyncDatabase[Doc] = request.app.state.db
    return db


def redis_of(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def locale_of(request: Request) -> str:
    """`?lang=` first, then the `lang` cookie, then Accept-Language."""
    for raw in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        locale = canonical_locale(raw[:20]) if raw else None
        if locale:
            return locale
    return negotiate(request.headers.get("accept-language"))


async def session_actor(request: Request) -> Actor:
    """Who is signed in to the back office: only a live session counts here (an API token does not)."""
    actor = await actor_of(request)
    return actor if getattr(request.state, "session_id", None) else ANONYMOUS


async def signed_in(request: Request) -> Actor:
    actor = await session_actor(request)
    if not actor.signed_in:
        raise Unauthenticated()
    return actor


async def read_form(request: Request) -> FormData:
    """URL-encoded forms only: the back office has no uploads, so a file part is refused."""
    return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=64 * 1024)


async def posted(request: Request) -> tuple[Actor, FormData]:
    """A signed-in POST with the session's CSRF token; anything else changes nothing."""
    actor = await signed_in(request)
    form = await read_form(request)
    security.check_session_token(request, form)
    return actor, form


def form_str(form: FormData, name: str, limit: int = 5000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def form_list(form: FormData, name: str) -> list[str]:
    return [v[:200] for v in form.getlist(name) if isinstance(v, str) and v][:100]


def form_version(form: FormData) -> int:
    try:
        return int(form_str(form, "version", 20))
    except ValueError:
        raise HTTPException(400, "version") from None


# ---------------------------------------------------------------- form values kept between renders

class Values:
    """What a form shows: single values by name, lists for checkboxes and multi-selects."""

    def __init__(self, data: Mapping[str, Iterable[str] | str | int | float | None] | None = None) -> None:
        self._data: dict[str, list[str]] = {}
        for key, value in (data or {}).items():
            if value is None:
                continue
            if isinstance(value, str | int | float):
                self._data[key] = [str(value)]
            else:
                self._data[key] = [str(v) for v in value]

    @classmethod
    def of_form(cls, form: FormData) -> Values:
        out = cls()
        for key, value in form.multi_items():
            if isinstance(value, str) and key not in (security.CSRF_FIELD, "password", "password2"):
                out._data.setdefault(key, []).append(value[:5000])
        return out

    def get(self, name: str) -> str:
        found = self._data.get(name)
        return found[0] if found else ""

    def all(self, name: str) -> list[str]:
        return list(self._data.get(name, []))

    def has(self, name: str, value: str) -> bool:
        return value in self._data.get(name, [])

    def set(self, name: str, value: str | list[str]) -> None:
        self._data[name] = [value] if isinstance(value, str) else list(value)


def localized_values(prefix: str, texts: Mapping[str, str] | None) -> dict[str, str]:
    return {f"{prefix}.{locale}": (texts or {}).get(locale, "") for locale in LOCALES}


def localized_input(form: FormData, prefix: str, limit: int = 5000) -> dict[str, str]:
    return {locale: form_str(form, f"{prefix}.{locale}", limit) for locale in LOCALES}


# ---------------------------------------------------------------- time

def local_input(moment: datetime | None) -> str:
    """A moment as the value of an <input type="datetime-local"> in Shenzhen time."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M") if moment else ""


def parse_local(text: str) -> tuple[datetime | None, str | None]:
    """(moment, problem key) from a datetime-local value read as Asia/Shanghai time."""
    text = text.strip()
    if not text:
        return None, None
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return None, "bad_datetime"
    if naive.tzinfo is not None:
        return naive, None
    return naive.replace(tzinfo=SHANGHAI), None


def parse_day(text: str) -> tuple[date | None, str | None]:
    text = text.strip()
    if not text:
        return None, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return None, "bad_date"


def show_time(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else "—"


def show_value(value: Any, locale: str, limit: int = 300) -> str:
    """Any stored value as one readable line (conflict boxes, the audit diff)."""
    if value is None or value == "" or value == [] or value == {}:
        text = "—"
    elif isinstance(value, datetime):
        text = show_time(value)
    elif isinstance(value, dict) and set(value) <= set(LOCALES):
        text = " / ".join(f"{k}: {v}" for k, v in value.items() if v)
    elif isinstance(value, dict) and value.get("type") == "Point" and "coordinates" in value:
        lng, lat = value["coordinates"]
        text = f"{lat}, {lng}"
    elif isinstance(value, dict):
        text = "; ".join(f"{k}: {show_value(v, locale, limit)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(show_value(v, locale, limit) for v in value)
    elif isinstance(value, bool | int | float | str):
        text = str(value)
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- rendering

def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           headers: Mapping[str, str] | None = None, *, pre_session: bool = False) -> Response:
    locale = locale_of(request)
    actor = getattr(request.state, "actor", None) if getattr(request.state, "session_id", None) else None
    if pre_session:
        csrf = security.pre_session_token(request)
    elif getattr(request.state, "session_id", None):
        csrf = security.session_token(request)
    else:
        csrf = ""
    ok = request.query_params.get("ok", "")
    base: dict[str, Any] = {
        "locale": locale, "locales": LOCALES, "actor": actor or ANONYMOUS, "csrf": csrf,
        "t": functools.partial(messages.translate, locale=locale), "pick": functools.partial(pick, locale=locale),
        "show": functools.partial(show_value, locale=locale), "show_time": show_time,
        "field_label": functools.partial(messages.field_label, locale=locale),
        "notice": ok if ok in messages.NOTICES else "", "errors": {}, "values": Values(), "path": request.url.path,
    }
    response = templates.TemplateResponse(request, name, {**base, **(context or {})}, status_code=status_code,
                                          headers=headers)
    if pre_session:
        security.set_pre_session_cookie(request, response, csrf)
    asked = request.query_params.get("lang")
    if asked and canonical_locale(asked[:20]) == locale:
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, path="/admin", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
    return response


def message(request: Request, title_key: str, text_key: str, status_code: int,
            details: list[str] | None = None, headers: Mapping[str, str] | None = None) -> Response:
    return render(request, "message.html", {"title_key": title_key, "text_key": text_key,
                                            "details": details or []}, status_code, headers)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    if request.method == "GET" and request.url.path.startswith("/admin/") and request.url.path != "/admin/login":
        return see_other("/admin/login?next=" + quote(request.url.path, safe="/"))
    return see_other("/admin/login")


def page(endpoint: Endpoint) -> Endpoint:
    """Domain errors become pages here, inside the /admin mount, so they carry its security headers."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Unauthenticated:
            return login_redirect(request)
        except security.CsrfError:
            return message(request, "csrf_title", "csrf_failed", 403)
        except Forbidden:
            return message(request, "forbidden_title", "forbidden", 403)
        except NotFound:
            return message(request, "not_found_title", "not_found", 404)
        except RateLimited as exc:
            return message(request, "rate_limited_title", "rate_limited", 429,
                           headers={"Retry-After": str(exc.retry_after)})
        except Invalid as exc:
            locale = locale_of(request)
            colon = messages.translate("colon", locale)  # full-width in Chinese
            details = [f"{messages.field_label(f, locale)}{colon}{messages.translate(k, locale)}"
                       for f, k in exc.fields.items()]
            return message(request, "invalid_title", "invalid", 422, details)
        except Conflict:
            return message(request, "conflict_title", "conflict_reload", 409)
        except HTTPException as exc:
            return message(request, "bad_request_title", "bad_request", exc.status_code)

    return wrapper


async def http_error(request: Request, exc: Exception) -> Response:
    """404/405/413… raised by routing itself, rendered inside the mount (security headers included)."""
    assert isinstance(exc, HTTPException)
    await session_actor(request)
    if exc.status_code == 404:
        return message(request, "not_found_title", "not_found", 404)
    return message(request, "bad_request_title", "bad_request", exc.status_code, headers=exc.headers)

