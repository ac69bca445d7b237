"""The back office at /admin (server-rendered, works without JavaScript)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from server.settings import Settings


def admin_routes(settings: Settings) -> list[BaseRoute]:
    return []
