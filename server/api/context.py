"""What every resolver can reach, as typed attributes: clients, settings, locale, the clock, loaders, who is
asking, the live hubs, the rate limiter and the push host guard.

The view (server/api/view.py) builds one per request from the application's state; resolvers read only this,
never `request.app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from server.api.crowd.hub import CrowdHub
from server.api.errors import BAD_USER_INPUT, UNSUPPORTED_LOCALE, ApiError
from server.api.inbox.hub import InboxHub
from server.api.loaders import Loaders
from server.api.memo import VersionedMemo, versioned_key
from server.api.push.progress_hub import ProgressHub
from server.domain import freshness
from server.domain.actor import ANONYMOUS, Actor
from server.domain.i18n import LOCALES, canonical_locale
from server.plumbing.auth import actor_of, client_ip
from server.plumbing.ratelimit import Limiter
from server.push.hosts import HostGuard
from server.services.mongo import Doc
from server.settings import Settings

_guards: dict[tuple[bool, bool], HostGuard] = {}


def shared_host_guard(settings: Settings) -> HostGuard:
    """One guard (and DNS cache) per process; local push services only with allow_local_push_services."""
    key = (settings.allow_local_push_services, settings.production)
    guard = _guards.get(key)
    if guard is None:
        guard = _guards[key] = HostGuard(allow_local=key[0], production=key[1])
    return guard


@dataclass(slots=True)
class Context:
    db: AsyncDatabase[Doc]
    redis: Redis
    settings: Settings
    locale: str
    now: datetime
    request_id: str
    request: Request | WebSocket | None = None
    response: Response | WebSocket | None = None
    actor: Actor | None = None  # who is asking; None until first needed (a bearer token costs a MongoDB read)
    crowd_hub: CrowdHub | None = None  # None outside a running app (no live subscriptions then)
    inbox_hub: InboxHub | None = None
    progress_hub: ProgressHub | None = None
    limiter: Limiter | None = None  # None: no GraphQL cost budget
    host_guard: HostGuard | None = None  # None: the process-wide guard for these settings
    explicit_locale: str | None = None
    connection_params: dict[str, Any] | None = None  # graphql-transport-ws connection_init payload
    memo: VersionedMemo | None = None  # the process's, with tag_versions of a public-cache miss
    # the process's memo of things by id or by grid point (merchants, pictures, near-me orders): many and varied,
    # so kept apart from `memo`'s few shared pieces, which they would otherwise push out
    entity_memo: VersionedMemo | None = None
    tag_versions: dict[str, str] | None = None
    # A public-cache miss's: each merchant whose open-now it showed → when that next changes (epoch s, inf: not
    # today), so the answer is kept until then rather than the next quarter-hour (server/api/cached_reads.py)
    open_turns: dict[str, float] | None = None
    _loaders: Loaders | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.host_guard is None:
            self.host_guard = shared_host_guard(self.settings)

    @property
    def loaders(self) -> Loaders:
        # Built on first use: a WebSocket's context lives as long as the socket and most never load anything
        # (its subscriptions run in shared feeds), and 13 idle DataLoaders cost ~11 KB per socket.
        if self._loaders is None:
            self._loaders = Loaders(self.db, self.now, self.settings,
                                    categories_key=self.memo_key((freshness.EVERYTHING,), "categories"),
                                    memo=self.memo, entity_memo=self.entity_memo,
                                    catalog_key=self.memo_key((freshness.EVERYTHING, freshness.ANY_WRITE), "catalog"))
        return self._loaders

    def memo_key(self, tags: tuple[str, ...], *what: Any) -> Any:
        """A key for the process memo while `tags` keep the versions this request saw, or None."""
        return versioned_key(self.tag_versions, tags, *what) if self.memo is not None else None

    async def viewer(self) -> Actor:
        """Who is asking (a session cookie or a bearer token), resolved once per request."""
        if self.actor is None:
            self.actor = await actor_of(self.request) if self.request is not None else ANONYMOUS
        return self.actor

    def client_ip(self) -> str:
        return client_ip(self.request) if self.request is not None else "unknown"

    def push_host_guard(self) -> HostGuard:
        assert self.host_guard is not None  # set in __post_init__
        return self.host_guard

    def live_crowd(self) -> CrowdHub:
        if self.crowd_hub is None:
            raise RuntimeError("live crowd updates need the running app's hub")
        return self.crowd_hub

    def live_progress(self) -> ProgressHub:
        if self.progress_hub is None:
            raise RuntimeError("live campaign progress needs the running app's hub")
        return self.progress_hub

    def live_inbox(self) -> InboxHub:
        if self.inbox_hub is None:
            raise RuntimeError("live inbox items need the running app's hub")
        return self.inbox_hub

    def use_locale(self, requested: str | None) -> None:
        """Apply a root field's `locale` argument; all root fields of one request must agree."""
        if requested is None:
            return
        locale = canonical_locale(requested) if len(requested) <= 20 else None
        if locale is None:
            raise ApiError(UNSUPPORTED_LOCALE, f"locale {requested[:20]!r} is not supported; use one of "
                           f"{', '.join(LOCALES)}", supported=list(LOCALES))
        if self.explicit_locale is not None and self.explicit_locale != locale:
            raise ApiError(BAD_USER_INPUT, "root fields of one request ask for different locales")
        self.explicit_locale = self.locale = locale

    def operation_locale(self, requested: str | None) -> str:
        """A subscription's `locale` argument: one socket carries many operations, each may read its own."""
        if requested is None:
            return self.locale
        locale = canonical_locale(requested) if len(requested) <= 20 else None
        if locale is None:
            raise ApiError(UNSUPPORTED_LOCALE, f"locale {requested[:20]!r} is not supported; use one of "
                           f"{', '.join(LOCALES)}", supported=list(LOCALES))
        return locale
