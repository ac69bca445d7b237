"""Health probes for load balancers, and the answer a plain route gives while a data service is down.

/healthz: the process is alive. /readyz: MongoDB and Redis answer (each probed at once, at most 2 s).
Without MongoDB it is 503.  Without only Redis it stays 200 with status "degraded": every web process
shares the same Redis, so taking them all out of the load balancer would stop the reads that still work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.services.availability import RETRY_AFTER_SECONDS, down_service, outage

log = logging.getLogger("shangquan.web")
PROBE_TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks: dict[str, str] = {}

    async def mongo() -> None:
        await state.db.command("ping")

    async def redis() -> None:
        await state.redis.ping()

    async def probe(name: str, check: Callable[[], Awaitable[None]]) -> None:
        try:
            await asyncio.wait_for(check(), timeout=PROBE_TIMEOUT)
            checks[name] = "ok"
            outage(name).up()
        except Exception as exc:  # any failure means "not ready"; the reason is for the operator
            checks[name] = f"error: {type(exc).__name__}"
            outage(name).down(exc)

    await asyncio.gather(probe("mongodb", mongo), probe("redis", redis))
    if checks["mongodb"] != "ok":
        status, code = "unavailable", 503
    else:
        status, code = ("ready", 200) if checks["redis"] == "ok" else ("degraded", 200)
    return JSONResponse({"status": status, **checks}, status_code=code, headers={"cache-control": "no-store"})


async def service_unavailable(request: Request, exc: Exception) -> Response:
    """Exception handler: a route that needed MongoDB or Redis while it was down answers 503, not 500."""
    service = down_service(exc)
    if service is None:
        raise exc
    outage(service).down(exc)  # the outage is told once; each request that met it only at DEBUG
    log.debug("%s %s: %s unavailable (%s)", request.method, request.url.path, service, exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    message = f"a data service is unavailable; retry in {RETRY_AFTER_SECONDS} s"
    if "text/html" in request.headers.get("accept", ""):
        html = (f'<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
                f"<title>503</title><p>服务暂时不可用，请稍后再试。<br>{message}.</p>")
        return Response(html, status_code=503, media_type="text/html", headers=headers)
    return JSONResponse({"error": message, "code": "SERVICE_UNAVAILABLE", "retryAfter": RETRY_AFTER_SECONDS},
                        status_code=503, headers=headers)
