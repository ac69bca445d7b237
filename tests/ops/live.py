"""A graphql-transport-ws client on a raw WebSocket, so a test sees every frame, the close code included."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from server.api.ids import to_global

SUBSCRIPTION = """subscription($d: ID!) { crowdUpdates(districtId: $d) { districtId
  areas { areaId crowd { occupancy } } } }"""


async def open_subscription(base_url: str, district: str) -> ClientConnection:
    """Connected, acknowledged, subscribed to the district's crowd; the first update is waiting to be read."""
    ws = await connect(base_url.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"],
                       open_timeout=10, close_timeout=5)
    await ws.send(json.dumps({"type": "connection_init"}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert ack["type"] == "connection_ack", ack
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
        "query": SUBSCRIPTION, "variables": {"d": to_global("District", district)}}}))
    return ws


async def next_update(ws: ClientConnection, wait: float = 10) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), wait))
    assert message["type"] == "next" and "errors" not in message["payload"], message
    update: dict[str, Any] = message["payload"]["data"]["crowdUpdates"]
    return update


def occupancy(update: dict[str, Any], area: str) -> int | None:
    for item in update["areas"]:
        if item["areaId"] == to_global("Area", area):
            value: int | None = item["crowd"]["occupancy"]
            return value
    return None
