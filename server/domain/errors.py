"""Errors raised by service functions; the web and GraphQL layers translate them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "BAD_USER_INPUT"


class Forbidden(DomainError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "you may not do this") -> None:
        super().__init__(message)


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "sign in first") -> None:
        super().__init__(message)


class NotFound(DomainError):
    code = "NOT_FOUND"


class RateLimited(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; try again in {retry_after} s")
        self.retry_after = retry_after


class Invalid(DomainError):
    """Per-field problems; `fields` maps a field name to a message key (see server/domain/messages.py)."""

    code = "VALIDATION_FAILED"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class Conflict(DomainError):
    """Someone else saved first; `current` holds what is stored now."""

    code = "CONFLICT"

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__("this was changed by someone else since you opened it")
        self.current = current
