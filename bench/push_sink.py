"""A lean Web Push service for bench/load.py --fault: answers 201 and counts messages per subscription.

    POST /push/{token}   a message: needs `Authorization: vapid t=…, k=…`, `Content-Encoding: aes128gcm`,
                         a `TTL` header and a non-empty body (else 400/401, counted as rejected)
    GET  /counts         {"requests", "rejected", "tokens": {token: messages}} so far

It neither checks the VAPID signature nor decrypts (tests/push/push_service.py does both): the benchmark
only asks which subscriptions got a message and how many.  `PUSH_SINK_DELAY_MS` holds each answer that
long, as a distant push service would, so a campaign takes long enough to be interrupted.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_app(delay_ms: int = 0) -> Starlette:
    counts: Counter[str] = Counter()
    totals = {"requests": 0, "rejected": 0}

    async def push(request: Request) -> Response:
        totals["requests"] += 1
        body = await request.body()
        headers = request.headers
        if not headers.get("authorization", "").lower().startswith("vapid "):
            totals["rejected"] += 1
            return Response(status_code=401)
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers or not body:
            totals["rejected"] += 1
            return Response(status_code=400)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        token = request.path_params["token"]
        counts[token] += 1
        return Response(status_code=201, headers={"location": f"/message/{token}/{counts[token]}"})

    async def report(request: Request) -> Response:
        return JSONResponse({**totals, "tokens": dict(counts)})

    return Starlette(routes=[Route("/push/{token}", push, methods=["POST"]), Route("/counts", report)])


def app_from_env() -> Starlette:
    return create_app(int(os.environ.get("PUSH_SINK_DELAY_MS") or 0))
