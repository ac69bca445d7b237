"""The same GraphQL request from many real processes at once (a counter of shop assistants, or a POS
retrying): each process sends its share from threads, all released at one wall-clock moment."""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import httpx


def _send(url: str, bodies: list[dict[str, Any]], headers: dict[str, str], start_at: float) -> list[dict[str, Any]]:
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=len(bodies))) as client:
        def one(body: dict[str, Any]) -> dict[str, Any]:
            response = client.post(f"{url}/graphql", json=body, headers=headers)
            result: dict[str, Any] = json.loads(response.text)
            return result

        time.sleep(max(0.0, start_at - time.time()))
        with ThreadPoolExecutor(len(bodies)) as threads:
            return list(threads.map(one, bodies))


def burst(url: str, bodies: list[dict[str, Any]], headers: dict[str, str], processes: int) -> list[dict[str, Any]]:
    """Every body posted once, spread over `processes` fresh interpreters; the answers in no order.
    Blocking: call it from a thread while the app serves."""
    shares = [bodies[i::processes] for i in range(processes)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        # every interpreter started first (each busy warm-up makes the pool spawn another), so the release
        # moment comes after all of them have imported httpx
        list(pool.map(time.sleep, [0.3] * processes))
        start_at = time.time() + 1.0
        futures = [pool.submit(_send, url, share, headers, start_at) for share in shares if share]
        return [answer for f in futures for answer in f.result()]
