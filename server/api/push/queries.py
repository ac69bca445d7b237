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

    @strawberry.field(description="Local hours (Asia/Shanghai) in which only urgent messages are sent: start and "
                                  "end hour (end exclusive, may wrap past midnight); null when there are none.")
    def push_quiet_hours(self, info: AppInfo) -> QuietHours | None:
        hours = info.context.settings.push_quiet_hours
        return None if hours is None else QuietHours(start=hours[0], end=hours[1])


@strawberry.type(description="A span of local hours, e.g. 22 to 8.")
class QuietHours:
    start: int
    end: int
