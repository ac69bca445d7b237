"""A live socket is logged once, by the access log (path, close code, duration), not three more times by uvicorn
and websockets ('"WebSocket /graphql" [accepted]', "connection open", "connection closed"): each line goes
through redaction and the JSON formatter, and a shopper's subscribe paid ~10 % of its CPU for the three."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.api.live.protocol import SOCKET_LOG
from tests.conftest import RunningApp
from tests.ops.live import next_update, open_subscription


async def test_a_subscribed_socket_is_one_access_line_and_its_errors_still_reach_the_log(
        app_server: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="uvicorn.error")  # as in production (the tests' servers say "warning")
    ws = await open_subscription(app_server.url, "huaqiangbei")
    await next_update(ws)
    await ws.close()
    for _ in range(500):  # the server logs the socket once it has seen it close
        if any(r.name == "shangquan.access" and getattr(r, "method", "") == "WEBSOCKET" for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    lines = [r for r in caplog.records if r.name.startswith(("uvicorn", "websockets", "shangquan.access"))]
    assert [(r.name, getattr(r, "method", None)) for r in lines] == [("shangquan.access", "WEBSOCKET")], \
        [r.getMessage() for r in lines]
    # what uvicorn says about a socket at warning level or above is still logged, where it was (uvicorn.error)
    SOCKET_LOG.error("ASGI callable returned without completing handshake.")
    assert any(r.name == "uvicorn.error" and r.levelno == logging.ERROR and "handshake" in r.getMessage()
               for r in caplog.records)
