"""Who is making a request: a session cookie (back office) or a Bearer API token (integrations)."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from starlette.requests import HTTPConnection

from server.domain.accounts import repository as accounts_repository
from server.domain.accounts import service as accounts
from server.domain.accounts import sessions
from server.domain.actor import ANONYMOUS, Actor
from server.services.mongo import Doc
from server.settings import Settings

SESSION_COOKIE = "sq_session"


async def session_policy(db: AsyncDatabase[Doc], settings: Settings) -> sessions.SessionPolicy:
    secret = settings.session_secret
    if not secret:  # one secret for every web process
        secret = await accounts_repository.shared_secret(db, "session_secret")
    return sessions.SessionPolicy(secret.encode(), settings.session_idle_minutes * 60,
                                  settings.session_absolute_hours * 3600)


def client_ip(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


async def actor_of(connection: HTTPConnection) -> Actor:
    """Resolved once per request and kept on its state."""
    cached = getattr(connection.state, "actor", None)
    if isinstance(cached, Actor):
        return cached
    state = connection.app.state
    actor = ANONYMOUS
    authorization = connection.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        actor = await accounts.actor_for_token(state.db, authorization[7:].strip()) or ANONYMOUS
    else:
        session_id = sessions.session_id_from_cookie(state.session_policy, connection.cookies.get(SESSION_COOKIE))
        if session_id:
            account_id = await sessions.resolve(state.redis, state.session_policy, session_id)
            account = await accounts.account_by_id(state.db, account_id) if account_id else None
            if account is not None:
                actor = account.actor()
                connection.state.session_id = session_id
    connection.state.actor = actor
    return actor
