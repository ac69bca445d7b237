"""What every resolver can reach: clients, locale, the clock, loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from server.api.errors import BAD_USER_INPUT, UNSUPPORTED_LOCALE, ApiError
from server.api.loaders import Loaders
from server.domain.i18n import LOCALES, canonical_locale
from server.services.mongo import Doc
from server.settings import Settings


@dataclass(slots=True)
class Context:
    db: AsyncDatabase[Doc]
    redis: Redis
    settings: Settings
    locale: str
    now: datetime
    request_id: str
    request: Any = None
    response: Any = None
    explicit_locale: str | None = None
    connection_params: dict[str, Any] | None = None  # graphql-transport-ws connection_init payload
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.now, self.settings)

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
