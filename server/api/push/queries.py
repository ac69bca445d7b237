from __future__ import annotations

import strawberry

from server.api.common import AppInfo
from server.push.vapid import keys_for_settings


@strawberry.type
class PushQueries:
    @strawberry.field(description="The VAPID public key (base64url, uncompressed P-256 point): the PWA passes it "
                                  "as applicationServerKey to PushManager.subscribe().")
    async def push_public_key(self, info: AppInfo) -> str:
        return (await keys_for_settings(info.context.db, info.context.settings)).public_b64
