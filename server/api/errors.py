"""Typed GraphQL errors: every error a client sees carries `extensions.code`."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from server.domain.errors import DomainError
from server.services.availability import RETRY_AFTER_SECONDS, down_service, outage

log = logging.getLogger("shangquan.graphql")

BAD_USER_INPUT = "BAD_USER_INPUT"
INVALID_ID = "INVALID_ID"
NOT_FOUND = "NOT_FOUND"
INVALID_CURSOR = "INVALID_CURSOR"
PAGE_SIZE_EXCEEDED = "PAGE_SIZE_EXCEEDED"
UNSUPPORTED_LOCALE = "UNSUPPORTED_LOCALE"
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL = "INTERNAL_SERVER_ERROR"
RATE_LIMITED = "RATE_LIMITED"  # HTTP 429 with Retry-After; extensions.retryAfter in seconds
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"  # HTTP 503: MongoDB or Redis is down; retry later
DATE_OUT_OF_RANGE = "DATE_OUT_OF_RANGE"  # popularTimes outside today … today + 6 (Shenzhen dates)


class ApiError(GraphQLError):
    """An error the client caused and can act on; never masked."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message, extensions={"code": code, **extra})


def classify(error: GraphQLError) -> str | None:
    """The code for an error, or None when it is unexpected and must be masked."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code  # FORBIDDEN, UNAUTHENTICATED, NOT_FOUND … raised by a service in a query
    if original is not None and not isinstance(original, GraphQLError):
        return SERVICE_UNAVAILABLE if down_service(original) else None
    if error.message.startswith("Syntax Error"):
        return QUERY_TOO_LARGE if "tokens" in error.message else PARSE_FAILED
    return VALIDATION_FAILED


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    code = classify(error)
    if code is None:
        masked: dict[str, Any] = {
            "message": f"Internal server error (request {request_id})",
            "extensions": {"code": INTERNAL, "requestId": request_id},
        }
        if error.path:
            masked["path"] = error.path
        return masked
    formatted = dict(error.formatted)
    extensions: dict[str, Any] = {**(error.extensions or {}), "code": code}
    if code == SERVICE_UNAVAILABLE and error.original_error is not None:
        # the driver's message names hosts and ports: keep it in the log, tell the client what to do
        service = down_service(error.original_error)
        if service is not None:
            outage(service).down(error.original_error)  # told once per outage; each request only at DEBUG
        log.debug("request %s: %s unavailable (%s)", request_id, service, error.original_error)
        formatted["message"] = f"a data service is unavailable; retry in {RETRY_AFTER_SECONDS} s"
        extensions["retryAfter"] = RETRY_AFTER_SECONDS
    formatted["extensions"] = extensions
    return formatted
