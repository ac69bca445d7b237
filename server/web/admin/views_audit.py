"""The audit log (operators: their districts; admins: all), and the admins' list of accounts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.domain.accounts import service as accounts
from server.domain.audit import service as audit
from server.domain.audit.repository import AuditEntry
from server.web.admin.common import (
    db_of,
    page,
    render,
    show_value,
    signed_in,
)

IGNORED_IN_DIFF = {"updated_at"}


def diff(entry: AuditEntry, locale: str) -> list[tuple[str, str, str]]:
    """(field, before, after) for every field that changed."""
    before, after = entry.before or {}, entry.after or {}
    rows = []
    for key in sorted((set(before) | set(after)) - IGNORED_IN_DIFF):
        if before.get(key) != after.get(key):
            rows.append((key, show_value(before.get(key), locale, 160) if entry.before is not None else "",
                         show_value(after.get(key), locale, 160) if entry.after is not None else ""))
    return rows[:40]


@page
async def audit_log(request: Request) -> Response:
    actor = await signed_in(request)
    entries = await audit.visible_to(db_of(request), actor)
    return render(request, "audit.html", {"entries": entries, "diff": diff})


@page
async def account_list(request: Request) -> Response:
    actor = await signed_in(request)
    found = await accounts.list_accounts(db_of(request), actor)
    return render(request, "accounts.html", {"accounts": found})
