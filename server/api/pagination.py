"""Keyset connections: cursors encode the last (sort value, _id) seen; one generic Connection and Edge."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry

from server.api.errors import BAD_USER_INPUT, INVALID_CURSOR, PAGE_SIZE_EXCEEDED, ApiError
from server.domain.paging import Key, Page

T = TypeVar("T")
NodeT = TypeVar("NodeT")

MAX_PAGE = 50
DEFAULT_PAGE = 20


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @staticmethod
    def after(cursors: list[str], has_next: bool) -> PageInfo:
        return PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None)


@strawberry.type
class Edge(Generic[NodeT]):
    """Strawberry names each use after its node: Edge[OfferType] is the schema's OfferEdge."""

    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    """A page of a list with its total: Connection[OfferType] is the schema's OfferConnection."""

    edges: list[Edge[NodeT]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Matches across all pages.")
    async def total_count(self) -> int:
        return await self.count()

    @staticmethod
    def of(page: Page[T], node: Callable[[T], NodeT]) -> Connection[NodeT]:
        edges = [Edge(cursor=encode_cursor(key), node=node(item)) for item, key, _ in page.items]
        return Connection(edges=edges, page_info=PageInfo.after([e.cursor for e in edges], page.has_next),
                          count=page.count)


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
