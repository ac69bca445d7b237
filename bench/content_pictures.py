"""Benchmark: what the seed content's pictures add to a start, and what a picture costs to serve.

    python bench/content_pictures.py [--reps 5]

* load: the real loader (server.content.loader.load_content) into a fresh database of an in-memory
  nx-27017, with the picture records and without them (content_images replaced by an empty list),
  alternated --reps times; median of each and their ratio. This is the cost every test app start pays.
* serve: one picture's first request (drawn with Pillow, encoded, stored in GridFS) against a later
  one (read from GridFS), through server.domain.images.service.variant; medians and ratio.

Wall clock on a shared machine: the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.content import loader
from server.domain.images import service
from server.services import embedded, mongo
from server.settings import ROOT


async def main(reps: int) -> None:
    child = embedded.start_mongo(Path(tempfile.mkdtemp()), in_memory=True)
    client = mongo.connect(child.url)
    real = loader.content_images
    with_pictures: list[float] = []
    without: list[float] = []
    try:
        for rep in range(reps):
            for pictures, times in ((True, with_pictures), (False, without)):
                loader.content_images = real if pictures else (lambda *_: [])  # type: ignore[assignment]
                db = client[f"bench_{rep}_{int(pictures)}"]
                await mongo.ensure_indexes(db)
                started = time.perf_counter()
                await loader.load_content(db, ROOT / "content")
                times.append(time.perf_counter() - started)
        loader.content_images = real
        db = client["bench_0_1"]
        keys = [d["key"] async for d in db.images.find({}, {"key": 1}).limit(reps * 2)]
        first, later = [], []
        for key in keys:
            started = time.perf_counter()
            assert await service.variant(db, key, 320) is not None
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert await service.variant(db, key, 320) is not None
            later.append(time.perf_counter() - started)
    finally:
        await client.close()
        child.stop()
    load = os.getloadavg()[0]
    w, wo = statistics.median(with_pictures), statistics.median(without)
    print(f"content load, fresh database: with pictures {w * 1000:.0f} ms, without {wo * 1000:.0f} ms, "
          f"ratio {w / wo:.2f} (+{(w - wo) * 1000:.0f} ms; {reps} reps; load average {load:.1f})")
    f, lt = statistics.median(first), statistics.median(later)
    print(f"one 320-px picture: first request {f * 1000:.0f} ms (drawn, encoded, stored), later {lt * 1000:.1f} ms "
          f"(GridFS), ratio {f / lt:.0f}x ({len(keys)} pictures)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    asyncio.run(main(parser.parse_args().reps))
