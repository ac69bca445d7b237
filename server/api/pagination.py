"""Keyset connections: cursors encode the last (sort value, _id) seen."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

import strawberry

from server.api.errors import BAD_USER_INPUT, INVALID_CURSOR, PAGE_SIZE_EXCEEDED, ApiError
from server.domain.paging import Key

MAX_PAGE = 50
DEFAULT_PAGE = 20


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(key: Key) -> str:
    value, last_id = key
    tagged: list[Any] = (["t", value.isoformat(), last_id] if isinstance(value, datetime)
                         else ["v", value, last_id])
    return base64.urlsafe_b64encode(json.dumps(tagged, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Key | None:
    if cursor is None:
        return None
    try:
        if len(cursor) > 300:
            raise ValueError
        tag, value, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(last_id, str):
            raise ValueError
        if tag == "t":
            return datetime.fromisoformat(value), last_id
        if tag == "v" and (value is None or isinstance(value, int | float | str)):
            return value, last_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        pass
    raise ApiError(INVALID_CURSOR, "the `after` cursor is not one this server gave out")


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0:
        raise ApiError(BAD_USER_INPUT, "`first` must not be negative", field="first")
    if first > MAX_PAGE:
        raise ApiError(PAGE_SIZE_EXCEEDED, f"`first` is at most {MAX_PAGE}", field="first", max=MAX_PAGE)
    return first
