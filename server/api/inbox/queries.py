"""The inbox's pages: every campaign message for these districts and topics, newest first."""

from __future__ import annotations

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.inbox.types import InboxItemType
from server.api.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from server.api.push.types import PushTopic
from server.domain.inbox import service as inbox


@strawberry.type
class InboxEdge:
    cursor: str
    node: InboxItemType


@strawberry.type
class InboxConnection:
    edges: list[InboxEdge]
    page_info: PageInfo
    locale: str


@strawberry.type
class InboxQueries:
    @strawberry.field(description="Campaign messages for these districts and topics, newest first.")
    async def inbox(self, info: AppInfo, districts: list[strawberry.ID], topics: list[PushTopic] | None = None,
                    locale: str | None = None, first: int | None = None,
                    after: str | None = None) -> InboxConnection:
        ctx = info.context
        ctx.use_locale(locale)
        size = page_size(first)
        page = await inbox.inbox(ctx.db, [key_of(d, "District") for d in districts[:inbox.MAX_DISTRICTS]],
                                 [t.value for t in topics or []], ctx.locale, first=size, now=ctx.now,
                                 after=decode_cursor(after))
        edges = [InboxEdge(cursor=encode_cursor(item.key), node=InboxItemType.of(item, ctx.locale))
                 for item in page.items]
        return InboxConnection(edges=edges, page_info=PageInfo.after([e.cursor for e in edges], page.has_next),
                               locale=ctx.locale)
