"""Mutation results: typed payloads whose `errors` say what went wrong, per field, with a code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from server.api.common import AppInfo
from server.domain.actor import Actor
from server.domain.errors import Conflict, DomainError, Invalid, RateLimited
from server.domain.messages import translate  # the same texts the back office shows

T = TypeVar("T")
V = TypeVar("V")


@strawberry.type(description="One problem with a mutation's input or permissions.")
class FieldError:
    field: str = strawberry.field(description="The input field, e.g. title.zh-CN; empty for the whole request.")
    message: str = strawberry.field(description="In the request's locale.")
    code: str = strawberry.field(description="FORBIDDEN, UNAUTHENTICATED, NOT_FOUND, CONFLICT, RATE_LIMITED, "
                                             "or a validation key such as required or coupon_format.")


def errors_of(exc: DomainError, locale: str) -> list[FieldError]:
    if isinstance(exc, Invalid):
        return [FieldError(field=f, message=translate(k, locale), code=k) for f, k in exc.fields.items()]
    if isinstance(exc, Conflict):
        return [FieldError(field="version", message=translate("conflict", locale), code=exc.code)]
    if isinstance(exc, RateLimited):
        return [FieldError(field="", message=str(exc), code=exc.code)]
    return [FieldError(field="", message=str(exc), code=exc.code)]


async def attempt(info: AppInfo, work: Awaitable[T]) -> tuple[T | None, list[FieldError], DomainError | None]:
    """Run a service call; a domain error becomes payload errors instead of a GraphQL error."""
    try:
        return await work, [], None
    except DomainError as exc:
        return None, errors_of(exc, info.context.locale), exc


async def actor(info: AppInfo) -> Actor:
    return await info.context.viewer()


@strawberry.input(description="A text in the three locales; zhCN is required where the text is.")
class LocalizedInput:
    zh_cn: str | None = strawberry.field(default=None, name="zhCN")
    zh_hk: str | None = strawberry.field(default=None, name="zhHK")
    en: str | None = None

    def as_dict(self) -> dict[str, str]:
        pairs = (("zh-CN", self.zh_cn), ("zh-HK", self.zh_hk), ("en", self.en))
        return {locale: text for locale, text in pairs if text}


def texts(value: LocalizedInput | None) -> dict[str, str]:
    return value.as_dict() if value else {}


async def saved(info: AppInfo, work: Awaitable[T], from_doc: Callable[[dict[str, Any]], T],
                view: Callable[[T, str], V]) -> tuple[V | None, list[FieldError]]:
    """A save's result as GraphQL shows it (`view(model, locale)`) and its errors, for every mutation payload;
    on CONFLICT the result is what is stored now, for the client to merge."""
    result, errors, exc = await attempt(info, work)
    if isinstance(exc, Conflict):
        result = from_doc(exc.current)
    return (view(result, info.context.locale) if result is not None else None), errors
