"""A share of bench/crowd_live.py's subscribers, in a process of its own (the bench starts several, so that
the client side is not what limits the measurement).

    python bench/live_clients.py --url ws://127.0.0.1:PORT/graphql --count 1250 --district GID --area GID
                                 [--deflate] [--parallel 50]

Opens `--count` graphql-transport-ws subscriptions to crowdUpdates of the district, then answers commands
on stdin, one per line, with one JSON line on stdout:

    count   -> {"counts": [messages received by each subscriber so far]}
    dump    -> {"arrivals": [[[time.time() on arrival, occupancy of --area or null, type], ...] per subscriber],
                "ended": [why each subscriber's socket ended, or null]}   (and forgets what it dumped)
    quit    -> closes every socket and exits

Arrivals are stamped on receipt and parsed later (dump), so that the receive loop stays lean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

SUBSCRIPTION = ("subscription($d: ID!) { crowdUpdates(districtId: $d) "
                "{ sentAt areas { areaId crowd { occupancy } } } }")


class Client:
    __slots__ = ("arrivals", "ended", "task", "ws")

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.ended: str | None = None
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, url: str, district: str, deflate: bool) -> None:
        ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")],
                           compression="deflate" if deflate else None, proxy=None, open_timeout=120,
                           ping_interval=None, close_timeout=2, max_queue=1024)
        self.ws = ws
        await ws.send('{"type":"connection_init","payload":{}}')
        ack = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {ack}")
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": SUBSCRIPTION, "variables": {"d": district}}}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if first.get("type") != "next" or first["payload"].get("errors"):
            raise RuntimeError(f"expected the current level first, got {first}")
        self.task = asyncio.create_task(self._pump(ws))

    async def _pump(self, ws: ClientConnection) -> None:
        arrivals = self.arrivals
        try:
            async for raw in ws:
                arrivals.append((time.time(), raw if isinstance(raw, str) else raw.decode()))
            self.ended = f"closed by the server ({ws.close_code})"
        except ConnectionClosed as exc:
            self.ended = f"connection lost: {exc}"

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


def parse(raw: str, area: str) -> tuple[int | None, str]:
    message = json.loads(raw)
    kind = str(message.get("type"))
    if kind != "next" or message.get("payload", {}).get("errors"):
        return None, kind
    for item in message["payload"]["data"]["crowdUpdates"]["areas"]:
        if item["areaId"] == area:
            return int(item["crowd"]["occupancy"]), kind
    return None, kind


async def main(args: argparse.Namespace) -> None:
    clients = [Client() for _ in range(args.count)]
    gate = asyncio.Semaphore(args.parallel)

    async def one(client: Client) -> None:
        async with gate:
            await client.open(args.url, args.district, args.deflate)

    results = await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)
    failed = [repr(r) for r in results if isinstance(r, BaseException)]
    print(json.dumps({"ready": args.count - len(failed), "failed": failed[:3]}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        out: dict[str, Any]
        if line == "count":
            out = {"counts": [len(c.arrivals) for c in clients]}
        elif line == "dump":
            out = {"arrivals": [[[t, *parse(raw, args.area)] for t, raw in c.arrivals] for c in clients],
                   "ended": [c.ended for c in clients]}
            for c in clients:
                c.arrivals = []
                if c.task is not None and not c.task.done():
                    c.task.cancel()  # restart the pump on the fresh list
                    with contextlib.suppress(asyncio.CancelledError):
                        await c.task
                    assert c.ws is not None
                    c.task = asyncio.create_task(c._pump(c.ws))
        elif line == "quit":
            break
        else:
            out = {"error": f"unknown command {line!r}"}
        sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    await asyncio.gather(*(c.close() for c in clients))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--district", required=True)
    parser.add_argument("--area", required=True)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--parallel", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
