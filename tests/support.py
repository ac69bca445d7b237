"""Accounts for tests, made through the real service functions."""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.accounts import service as accounts
from server.domain.accounts.models import Account

PASSWORD = "correct horse battery"


async def make_account(db: Any, role: str, *, merchant_ids: list[str] | None = None,
                       district_ids: list[str] | None = None, email: str | None = None) -> Account:
    """An admin directly; operators invited by an admin; merchants invited by an admin acting for the district."""
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    if role == "admin":
        return await accounts.create_admin(db, email, PASSWORD)
    admin = await accounts.create_admin(db, f"boot-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    invitation = await accounts.invite(db, admin.actor(), email, role, merchant_ids or [], district_ids or [])
    return await accounts.accept_invitation(db, invitation.token, PASSWORD)
