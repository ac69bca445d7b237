"""Health probes for load balancers: /healthz (the process is alive) and /readyz (its data services answer)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks: dict[str, str] = {}

    async def mongo() -> None:
        await state.db.command("ping")

    async def redis() -> None:
        await state.redis.ping()

    for name, probe in (("mongodb", mongo), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason is for the operator
            checks[name] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", **checks},
                        status_code=200 if ready else 503)
