"""Accounts for tests, made through the real service functions; writes made outside a request."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from server.domain.accounts import service as accounts
from server.domain.accounts.models import Account
from server.services import public_cache, redis
from server.settings import Settings

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


@contextlib.asynccontextmanager
async def told_public_cache(settings: Settings) -> AsyncIterator[None]:
    """Writes a test makes through a service, outside any request, outdate the app's cached answers as the same
    write in a request does (there, CacheBinding in server/api/cached_reads.py binds the cache)."""
    client = redis.connect(settings.redis_url, decode_responses=False)
    public_cache.bind(public_cache.PublicCache(client, settings.mongodb_db,
                                               max_entry_bytes=settings.public_cache_max_entry_bytes))
    try:
        yield
    finally:
        public_cache.bind(None)
        await client.aclose()


async def published_offer(db: Any, admin: Any, merchant_id: str, *, stock: int | None = None,
                          per_device: int | None = None, days: float = 3) -> Any:
    """A published offer of a shop, valid from a minute ago for `days`, made by an admin through the service."""
    from datetime import UTC, datetime, timedelta

    from server.domain.offers import service as offers

    now = datetime.now(UTC)
    offer = await offers.create(db, admin.actor(), merchant_id, offers.OfferInput(
        title={"zh-CN": "满100减20", "en": "20 off 100"}, kind="amount_off", amount_off_fen=2000,
        min_spend_fen=10000, valid_from=now - timedelta(minutes=1), valid_until=now + timedelta(days=days),
        stock=stock, per_device=per_device))
    return await offers.transition(db, admin.actor(), offer.id, "publish", offer.version)
