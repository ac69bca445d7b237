"""POST /push/clicked: the service worker reports an opened notification (anonymous, counts only)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from server.domain.push.campaign_service import count_click

MAX_BODY = 2048


async def push_clicked(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_BODY:
        return Response(status_code=413)
    try:
        report = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Response(status_code=400)
    campaign_id = report.get("id") if isinstance(report, dict) else None
    if not isinstance(campaign_id, str) or not await count_click(request.app.state.db, campaign_id):
        return Response(status_code=404)
    return Response(status_code=204)
