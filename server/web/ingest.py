"""POST /ingest/crowd: sensors send batches of readings with their key as a bearer token."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from server.domain.crowd import live, sensors
from server.domain.crowd.ingest import BatchError, ingest
from server.observability.metrics import count_readings
from server.plumbing.ratelimit import too_many
from server.services.availability import RETRY_AFTER_SECONDS, ServiceUnavailable

log = logging.getLogger("shangquan.ingest")
MAX_BODY = 256 * 1024
CLIENT_CLOSED = 499  # nginx's "client closed request": in the access log, not a server error (nobody reads it)


def _problem(status: int, message: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


async def ingest_crowd(request: Request) -> Response:
    state = request.app.state
    authorization = request.headers.get("authorization", "")
    sensor = None
    if authorization.lower().startswith("bearer "):
        sensor = await sensors.by_key(state.db, authorization[7:].strip())
    if sensor is None:
        return _problem(401, "a valid sensor key is required as `Authorization: Bearer <key>`")
    # Counted per sensor, and asked of Redis before anything is stored: a batch that could not reach
    # live subscribers and alert rules is refused whole (503), so sending it again later loses nothing.
    try:
        wait = await state.limiter.charge("ingest", f"sensor:{sensor.id}", 1,
                                          state.settings.rate_limit_ingest_batches, required=True)
    except ServiceUnavailable:
        return _problem(503, "live updates are unavailable; keep the batch and send it again later",
                        code="SERVICE_UNAVAILABLE", retryAfter=RETRY_AFTER_SECONDS)
    if wait:
        return too_many(wait, f"at most {state.settings.rate_limit_ingest_batches} batches per "
                              f"{state.limiter.window} s per sensor; try again in {wait} s")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        return _problem(413, f"the body is limited to {MAX_BODY} bytes; split the batch")
    try:
        body = await request.body()
    except ClientDisconnect:
        # The sensor gave up before its batch was read (a server far behind): nothing is stored, and a sensor
        # that saw its request fail sends the batch again. Not a 500: the server did nothing wrong with it.
        log.info("a sensor closed its connection before its batch was read; nothing stored")
        return Response(status_code=CLIENT_CLOSED)
    if len(body) > MAX_BODY:
        return _problem(413, f"the body is limited to {MAX_BODY} bytes; split the batch")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _problem(400, f"malformed JSON: {exc}")
    now = datetime.now(UTC)
    try:
        report = await ingest(state.db, sensor, payload, now)
    except BatchError as exc:
        return _problem(413 if "at most" in str(exc) else 400, str(exc))
    if report.touched_areas:
        await live.broadcast(state.db, state.crowd_publisher, state.settings, {sensor.district_id},
                             report.touched_areas, now)
    count_readings(len(report.stored))
    body_out = {"stored": report.stored, "duplicates": report.duplicates,
                "rejected": [asdict(r) for r in report.rejected]}
    if report.rejected and not (report.stored or report.duplicates):
        return JSONResponse(body_out, status_code=422)
    return JSONResponse(body_out, status_code=207 if report.rejected else 200)


