"""Server-rendered pages: the placeholder home page until the PWA lands, and the health probes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from server.domain.districts.repository import list_districts
from server.domain.i18n import negotiate, pick

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


async def home(request: Request) -> Response:
    locale = negotiate(request.headers.get("accept-language"))
    districts = await list_districts(request.app.state.db)
    return templates.TemplateResponse(request, "home.html", {
        "locale": locale,
        "districts": [{"name": pick(d.name, locale), "description": pick(d.description, locale)}
                      for d in districts],
    })


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
