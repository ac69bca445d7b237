"""Accounts: sign-in, invitations, API tokens, the first admin."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.domain import authz
from server.domain.accounts import passwords, ratelimit, repository
from server.domain.accounts.models import ROLES, Account
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.digests import digest
from server.domain.districts.repository import districts_by_ids
from server.domain.errors import Invalid, NotFound, RateLimited
from server.domain.merchants.repository import district_of_merchants
from server.services.mongo import Doc

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,}$")
INVITATION_DAYS = 7
TOKEN_PREFIX = "sq_"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _check_email(email: str) -> str:
    email = normalize_email(email)
    if not EMAIL.match(email):
        raise Invalid({"email": "email_invalid"})
    return email


async def _insert_account(db: AsyncDatabase[Doc], email: str, password: str, role: str,
                          merchant_ids: list[str], district_ids: list[str]) -> Account:
    problem = passwords.check_strength(password)
    if problem:
        raise Invalid({"password": problem})
    doc = {"_id": uuid.uuid4().hex, "email": email, "password_hash": passwords.hash_password(password),
           "role": role, "merchant_ids": merchant_ids, "district_ids": district_ids, "status": "active",
           "created_at": datetime.now(UTC)}
    try:
        return await repository.insert_account(db, doc)
    except repository.EmailTaken:
        raise Invalid({"email": "email_taken"}) from None


async def admin_exists(db: AsyncDatabase[Doc]) -> bool:
    """Whether the first admin was made (single-machine mode's banner says how, until then)."""
    return await repository.admin_exists(db)


async def create_admin(db: AsyncDatabase[Doc], email: str, password: str) -> Account:
    """Bootstrap from the command line: no actor, so no authorization to ask."""
    return await _insert_account(db, _check_email(email), password, "admin", [], [])


async def authenticate(db: AsyncDatabase[Doc], redis: Redis, email: str, password: str, ip: str) -> Account:
    email = normalize_email(email)[:256]
    wait = await ratelimit.retry_after(redis, email, ip)
    if wait:
        raise RateLimited(wait)
    account = await repository.account_by_email(db, email)
    ok = passwords.verify(account.password_hash if account else passwords.DUMMY_HASH, password)
    if not ok or account is None or account.status != "active":
        await ratelimit.record_failure(redis, email, ip)
        raise Invalid({"email": "login_failed"})  # one message whether or not the account exists
    await ratelimit.clear_account(redis, email)
    if passwords.needs_rehash(account.password_hash):
        await repository.set_password_hash(db, account.id, passwords.hash_password(password))
    return account


async def account_by_id(db: AsyncDatabase[Doc], account_id: str) -> Account | None:
    return await repository.active_account(db, account_id)


@dataclass(frozen=True, slots=True)
class Invitation:
    token: str  # shown once, in the link
    email: str
    role: str
    expires_at: datetime


async def invite(db: AsyncDatabase[Doc], actor: Actor, email: str, role: str,
                 merchant_ids: list[str], district_ids: list[str]) -> Invitation:
    """Admins invite operators (bound to districts); operators invite merchants of their districts."""
    problems: dict[str, str] = {}  # every field's problem at once, so the form can say each next to its field
    try:
        email = _check_email(email)
    except Invalid as exc:
        problems.update(exc.fields)
    if role not in ROLES:
        raise Invalid({"role": "role_invalid"})
    if role in ("admin", "operator"):
        authz.admin(actor)
        if role == "operator" and not district_ids:
            problems["district_ids"] = "required"
        elif set(district_ids) - set(await districts_by_ids(db, district_ids)):
            problems["district_ids"] = "unknown_district"
        merchant_ids = []
        logged_districts = sorted(set(district_ids))
    else:
        shops = await district_of_merchants(db, merchant_ids) if merchant_ids else {}
        if not merchant_ids:
            problems["merchant_ids"] = "required"
        elif len(shops) != len(set(merchant_ids)):
            problems["merchant_ids"] = "unknown_merchant"
        else:
            authz.district_operator(actor, set(shops.values()), "accounts")
        district_ids = []
        # logged under its shops' districts, so their operators find it in their audit log
        logged_districts = sorted(set(shops.values()))
    if problems:
        raise Invalid(problems)
    token = secrets.token_urlsafe(24)
    expires = datetime.now(UTC) + timedelta(days=INVITATION_DAYS)
    doc = {"_id": digest(token), "email": email, "role": role, "merchant_ids": merchant_ids,
           "district_ids": district_ids, "invited_by": actor.account_id, "expires_at": expires, "status": "open"}
    await repository.insert_invitation(db, doc)
    await audit.record(db, actor, "invite", "account", email, logged_districts, None,
                       {k: v for k, v in doc.items() if k != "_id"})
    return Invitation(token, email, role, expires)


async def pending_invitation(db: AsyncDatabase[Doc], token: str) -> Invitation:
    """Who an open invitation link is for, so the accept page can say it (the token itself is the right to see)."""
    doc = await repository.open_invitation(db, digest(token[:100]))
    if doc is None or doc["expires_at"] <= datetime.now(UTC):
        raise NotFound("this invitation link is unknown, used or expired")
    return Invitation(token, str(doc["email"]), str(doc["role"]), doc["expires_at"])


async def accept_invitation(db: AsyncDatabase[Doc], token: str, password: str) -> Account:
    doc = await repository.open_invitation(db, digest(token[:100]))
    if doc is None or doc["expires_at"] <= datetime.now(UTC):
        raise NotFound("this invitation link is unknown, used or expired")
    account = await _insert_account(db, doc["email"], password, doc["role"], doc["merchant_ids"],
                                    doc["district_ids"])
    used = {"status": "used", "used": {"at": datetime.now(UTC)}}
    await repository.mark_invitation_used(db, doc["_id"], used)
    await audit.record(db, account.actor(), "accept_invitation", "account", account.id,
                       account.district_ids, None, {"email": account.email, "role": account.role})
    return account


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    secret: str | None = None  # only right after creation


async def create_token(db: AsyncDatabase[Doc], actor: Actor, name: str, scopes: list[str]) -> ApiToken:
    authz.require_scope(actor, "accounts")
    name = name.strip()[:80]
    if not name:
        raise Invalid({"name": "required"})
    if not scopes or set(scopes) - set(authz.SCOPES):
        raise Invalid({"scopes": "scopes_invalid"})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = uuid.uuid4().hex[:16]
    now = datetime.now(UTC)
    shown = {"account_id": actor.account_id, "name": name, "scopes": sorted(set(scopes)), "created_at": now,
             "status": "active"}
    await repository.insert_token(db, {"_id": token_id, "token_hash": digest(secret), **shown})
    # the audit entry never holds the secret or its hash
    await audit.record(db, actor, "token.create", "api_token", token_id, [], None, shown)
    return ApiToken(token_id, name, sorted(set(scopes)), now, secret)


def _token_fields(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("_id", "token_hash")}


async def list_tokens(db: AsyncDatabase[Doc], actor: Actor) -> list[ApiToken]:
    return [ApiToken(d["_id"], d["name"], d["scopes"], d["created_at"])
            for d in await repository.active_tokens_of(db, actor.account_id)]


async def revoke_token(db: AsyncDatabase[Doc], actor: Actor, token_id: str) -> None:
    authz.require_scope(actor, "accounts")
    revoked = {"status": "revoked", "revoked": {"at": datetime.now(UTC)}}
    before = await repository.revoke_token(db, token_id, actor.account_id, revoked)
    if before is None:
        raise NotFound("no such token")
    await audit.record(db, actor, "token.revoke", "api_token", token_id, [], _token_fields(before),
                       {**_token_fields(before), **revoked})


async def actor_for_token(db: AsyncDatabase[Doc], secret: str) -> Actor | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    doc = await repository.active_token_by_digest(db, digest(secret))
    if doc is None:
        return None
    account = await account_by_id(db, doc["account_id"])
    return account.actor(frozenset(doc["scopes"])) if account else None


async def list_accounts(db: AsyncDatabase[Doc], actor: Actor) -> list[dict[str, Any]]:
    authz.admin(actor)
    return await repository.list_accounts(db)
