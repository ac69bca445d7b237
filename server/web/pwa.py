"""Routes of the shopper PWA (pwa/): shell, modules, service worker, manifest."""

from __future__ import annotations

from starlette.routing import BaseRoute

from server.settings import Settings


def pwa_routes(settings: Settings) -> list[BaseRoute]:
    return []
