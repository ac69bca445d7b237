"""Accounts, invitations and API tokens in MongoDB.

Secrets are stored only as their SHA-256 (server/domain/digests.py): callers pass digests, never secrets.
"""

from __future__ import annotations

import secrets
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.domain.accounts.models import Account
from server.services.mongo import Doc


class EmailTaken(Exception):
    """The unique index on accounts.email refused a second account with this address."""


async def insert_account(db: AsyncDatabase[Doc], doc: Doc) -> Account:
    try:
        await db.accounts.insert_one(doc)
    except DuplicateKeyError:
        raise EmailTaken(doc["email"]) from None
    return Account.from_doc(doc)


async def admin_exists(db: AsyncDatabase[Doc]) -> bool:
    return await db.accounts.find_one({"role": "admin"}, {"_id": 1}) is not None


async def account_by_email(db: AsyncDatabase[Doc], email: str) -> Account | None:
    """Whatever its status (sign-in says the same for a disabled account as for an unknown one)."""
    doc = await db.accounts.find_one({"email": email})
    return Account.from_doc(doc) if doc else None


async def active_account(db: AsyncDatabase[Doc], account_id: str) -> Account | None:
    doc = await db.accounts.find_one({"_id": account_id, "status": "active"})
    return Account.from_doc(doc) if doc else None


async def set_password_hash(db: AsyncDatabase[Doc], account_id: str, password_hash: str) -> None:
    await db.accounts.update_one({"_id": account_id}, {"$set": {"password_hash": password_hash}})


async def list_accounts(db: AsyncDatabase[Doc]) -> list[dict[str, Any]]:
    """Every account by email, without its password hash."""
    return [d async for d in db.accounts.find({}, {"password_hash": 0}).sort([("email", 1)])]


async def insert_invitation(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.invitations.insert_one(doc)


async def open_invitation(db: AsyncDatabase[Doc], token_digest: str) -> Doc | None:
    return await db.invitations.find_one({"_id": token_digest, "status": "open"})


async def mark_invitation_used(db: AsyncDatabase[Doc], invitation_id: str, used: Doc) -> None:
    await db.invitations.update_one({"_id": invitation_id}, {"$set": used})


async def insert_token(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db.api_tokens.insert_one(doc)


async def active_tokens_of(db: AsyncDatabase[Doc], account_id: str | None) -> list[Doc]:
    cursor = db.api_tokens.find({"account_id": account_id, "status": "active"}).sort([("created_at", 1)])
    return [d async for d in cursor]


async def revoke_token(db: AsyncDatabase[Doc], token_id: str, account_id: str | None, revoked: Doc) -> Doc | None:
    """The token as it was before, or None when this account has no such active token."""
    return await db.api_tokens.find_one_and_update(
        {"_id": token_id, "account_id": account_id, "status": "active"}, {"$set": revoked})


async def active_token_by_digest(db: AsyncDatabase[Doc], token_digest: str) -> Doc | None:
    return await db.api_tokens.find_one({"token_hash": token_digest, "status": "active"})


async def shared_secret(db: AsyncDatabase[Doc], name: str) -> str:
    """A secret every web process shares: the first to ask stores a fresh one, the others read it."""
    try:
        await db.meta.insert_one({"_id": name, "value": secrets.token_hex(32)})
    except DuplicateKeyError:
        pass
    doc: dict[str, Any] | None = await db.meta.find_one({"_id": name})
    assert doc is not None
    return str(doc["value"])
