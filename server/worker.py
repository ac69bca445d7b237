"""The worker process: push fan-out, scheduled campaigns and crowd alerts will run here.

Until those land it only proves it can reach its data services, then waits.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from server.services import mongo, redis
from server.settings import Settings

log = logging.getLogger("shangquan.worker")


async def run_worker(settings: Settings, mongodb_url: str, redis_url: str, stop: asyncio.Event) -> None:
    client = mongo.connect(mongodb_url)
    redis_client = redis.connect(redis_url)
    try:
        await client[settings.mongodb_db].command("ping")
        await redis_client.ping()
        log.info("worker ready; no jobs are defined yet")
        await stop.wait()
    finally:
        await redis_client.aclose()
        await client.close()
        log.info("worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    if not settings.mongodb_url or not settings.redis_url:
        raise SystemExit("the worker needs MONGODB_URL and REDIS_URL (python -m server runs one for you)")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, settings.mongodb_url, settings.redis_url, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
