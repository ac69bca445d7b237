"""What the app-wide security-header middleware costs per response, measured in-process.

Calls one tiny ASGI endpoint (a 200 with five headers, like a cached persisted-query answer) directly,
alone, inside server/plumbing/headers.py's middleware, and inside the app's request-id middleware (an existing
pure-ASGI middleware that adds one header: the yardstick), alternating rounds so all see the same machine
load; prints the time per call of each and the ratios.
No network and no server: only the middleware's own work is compared.

    .venv/bin/python bench/security_headers.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from starlette.types import Message, Receive, Scope, Send

from server.plumbing.headers import SecurityHeadersMiddleware
from server.plumbing.request_id import RequestIdMiddleware

HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"public, no-cache"),
           (b"vary", b"Accept, Accept-Language"), (b"etag", b'"0123456789abcdef"'), (b"content-length", b"2")]


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
    await send({"type": "http.response.body", "body": b"{}"})


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def sink(message: Message) -> None:
    return None


async def per_call(app: object, calls: int) -> float:
    scope: Scope = {"type": "http", "method": "GET", "path": "/graphql", "scheme": "http", "headers": []}
    started = time.perf_counter()
    for _ in range(calls):
        await app(dict(scope), receive, sink)  # type: ignore[operator]
    return (time.perf_counter() - started) / calls


async def main(calls: int, rounds: int) -> None:
    apps = {"endpoint alone": endpoint, "with the request id": RequestIdMiddleware(endpoint),
            "with the header policy": SecurityHeadersMiddleware(endpoint)}
    times: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            times[name].append(await per_call(app, calls // rounds))
    best = {name: min(values) for name, values in times.items()}
    print(f"load average {os.getloadavg()[0]:.2f}; best of {rounds} rounds of {calls // rounds} calls")
    for name, value in best.items():
        print(f"{name + ':':26}{value * 1e6:6.2f} µs/call")
    bare, request_id, policy = best.values()
    print(f"header policy / endpoint alone {policy / bare:.2f}; "
          f"header policy's added cost / request id's added cost {(policy - bare) / (request_id - bare):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
