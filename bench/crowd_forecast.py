"""Benchmark: the crowd forecaster against "same hour last week", back-tested on simulated history.

    python bench/crowd_forecast.py [--workers 2] [--every 3] [--seed 20261120]

For every area in content/districts.yaml, simulates 15-minute occupancy readings
(server.domain.crowd.simulate) from Monday 2026-09-14 to Saturday 2026-11-28 (local), with the
area's district festivals from content/festivals.yaml and the mainland public holidays; every
third area loses a few hours to a sensor dropout.  The readings become hourly mean percents.

Back-test: every `--every` hours from 2026-11-13 to 2026-11-27 (local), "now" is HH:45.  The
forecaster sees only hours before HH:00 (the history mapping hides the rest) and, as the live
value, the mean of the readings taken in HH:00–HH:45.  Its next 12 hours are compared with the
simulated hourly means, as are the naive forecast's.  The window holds normal days (Nov 16–19 for
every district), the tail of Auto Culture Week (Nov 7–15, three districts) and the first week of
the Winter Shopping Season (from Nov 20, every district), so festivals are both learned from
history and met cold; the National Day and Mid-Autumn holidays lie in the history.

MAPE counts only points whose actual is at least 5 % (a near-empty street at 04:00 turns any
error into hundreds of percent).  Prints overall and per horizon bucket (1–3, 4–6, 7–12 h)
MAPE for the forecast, the forecast without live data and the naive forecast, the same split by
target day kind, the ratio forecast/naive and whether the goal is met.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.domain.crowd.calendar import (  # noqa: E402
    MAINLAND_HOLIDAYS_2026_2027,
    MAINLAND_WORKDAYS_2026_2027,
    Calendar,
    crowd_day,
    festival_days,
)
from server.domain.crowd.forecast import forecast, hourly_means, naive_same_hour_last_week  # noqa: E402
from server.domain.crowd.simulate import area_personality, simulated_readings  # noqa: E402

LOCAL = timedelta(hours=8)
HISTORY_START = datetime(2026, 9, 14) - LOCAL  # naive local midnight → UTC
HISTORY_END = datetime(2026, 11, 28) - LOCAL
BACKTEST_START = datetime(2026, 11, 13) - LOCAL
BACKTEST_END = datetime(2026, 11, 27, 12) - LOCAL  # last cut-off whose 12 hours are all simulated
STEP = timedelta(minutes=15)
HORIZON = 12
MIN_ACTUAL = 5.0
BUCKETS = (("1-3 h", 1, 3), ("4-6 h", 4, 6), ("7-12 h", 7, 12))
METHODS = ("forecast", "no-live", "naive")


@dataclass(frozen=True)
class Area:
    id: str
    name: str
    district: str
    capacity: int
    festivals: frozenset[date]
    dropout: bool


class Before(Mapping[datetime, float]):
    """A read-only view of history that hides every hour at or after the cut-off."""

    def __init__(self, data: Mapping[datetime, float], cutoff: datetime) -> None:
        self.data = data
        self.cutoff = cutoff

    def __getitem__(self, key: datetime) -> float:
        if key >= self.cutoff:
            raise KeyError(key)
        return self.data[key]

    def __iter__(self) -> Iterator[datetime]:
        return (k for k in self.data if k < self.cutoff)

    def __len__(self) -> int:
        return sum(1 for k in self.data if k < self.cutoff)


def load_areas() -> list[Area]:
    districts = yaml.safe_load((ROOT / "content" / "districts.yaml").read_text(encoding="utf-8"))["districts"]
    festivals = yaml.safe_load((ROOT / "content" / "festivals.yaml").read_text(encoding="utf-8"))["festivals"]
    spans: dict[str, list[tuple[date, date]]] = defaultdict(list)
    for f in festivals:
        for district in f["districts"]:
            spans[district].append((f["starts_on"], f["ends_on"]))
    areas: list[Area] = []
    for d in districts:
        days = festival_days(spans[d["id"]])
        for a in d["areas"]:
            areas.append(Area(a["id"], a["name"]["zh-CN"], d["id"], int(a["capacity"]), days, len(areas) % 3 == 2))
    return areas


def run_area(args: tuple[Area, int, int]) -> dict[str, Any]:
    """Simulate one area and back-test it; returns summed absolute percentage errors per key."""
    area, seed, every = args
    calendar = Calendar(area.festivals, MAINLAND_HOLIDAYS_2026_2027, MAINLAND_WORKDAYS_2026_2027)
    start = HISTORY_START.replace(tzinfo=UTC)
    end = HISTORY_END.replace(tzinfo=UTC)
    readings = [(at, 100.0 * count / area.capacity)
                for at, count in simulated_readings(area.id, area.capacity, start, end, STEP, calendar, seed,
                                                    dropout=area.dropout)]
    by_time = dict(readings)
    hourly = hourly_means(readings)
    sums: dict[tuple[str, str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    cut = BACKTEST_START.replace(tzinfo=UTC)
    last = BACKTEST_END.replace(tzinfo=UTC)
    while cut <= last:
        now = cut + timedelta(minutes=45)
        live_values = [by_time[cut + i * STEP] for i in range(3) if cut + i * STEP in by_time]
        live = sum(live_values) / len(live_values) if live_values else None
        seen = Before(hourly, cut)
        results = {
            "forecast": forecast(seen, now, live, calendar, HORIZON),
            "no-live": forecast(seen, now, None, calendar, HORIZON),
            "naive": naive_same_hour_last_week(seen, now, HORIZON),
        }
        for k in range(HORIZON):
            target = results["naive"][k].hour
            actual = hourly.get(target)
            if actual is None or actual < MIN_ACTUAL:
                continue
            kind = calendar.day_kind(crowd_day(target))
            kind = "festival" if kind == "festival" else "holiday" if kind == "holiday" else "normal"
            bucket = next(name for name, lo, hi in BUCKETS if lo <= k + 1 <= hi)
            for method, points in results.items():
                ape = abs(points[k].percent - actual) / actual
                for group in ("all", bucket, kind):
                    sums[(method, group, "ape")] += ape
            for group in ("all", bucket, kind):
                counts[("n", group)] += 1
        cut += timedelta(hours=every)
    return {"sums": dict(sums), "counts": dict(counts), "area": area.id,
            "kind": area_personality(area.id).kind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=int, default=3, help="hours between back-test cut-offs")
    parser.add_argument("--seed", type=int, default=20261120)
    opts = parser.parse_args()
    started = time.perf_counter()
    areas = load_areas()
    jobs = [(a, opts.seed, opts.every) for a in areas]
    if opts.workers > 1:
        with multiprocessing.Pool(opts.workers) as pool:
            parts = pool.map(run_area, jobs)
    else:
        parts = [run_area(j) for j in jobs]
    sums: dict[tuple[str, str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for part in parts:
        for key, value in part["sums"].items():
            sums[key] += value
        for ckey, n in part["counts"].items():
            counts[ckey] += n

    def mape(method: str, group: str) -> float:
        n = counts[("n", group)]
        return 100.0 * sums[(method, group, "ape")] / n if n else float("nan")

    kinds = defaultdict(int)
    for part in parts:
        kinds[part["kind"]] += 1
    print(f"areas: {len(areas)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
          f"{sum(a.dropout for a in areas)} with a sensor dropout")
    print("history: 2026-09-14 .. 2026-11-27 local, 15-minute readings; back-test cut-offs every "
          f"{opts.every} h over 2026-11-13 .. 2026-11-27, 12 h ahead each")
    print("window: normal days, Auto Culture Week tail (3 districts), Winter Shopping Season from 11-20 (all)")
    print(f"scored points (actual >= {MIN_ACTUAL:.0f} %): {counts[('n', 'all')]}")
    print()
    header = f"{'MAPE %':<16}" + "".join(f"{m:>10}" for m in METHODS) + f"{'f/naive':>10}"
    print(header)
    groups = [("overall", "all")] + [(name, name) for name, _, _ in BUCKETS] + \
        [(f"{k} days", k) for k in ("normal", "festival", "holiday") if counts[("n", k)]]
    for label, group in groups:
        row = [mape(m, group) for m in METHODS]
        print(f"{label:<16}" + "".join(f"{v:>10.1f}" for v in row) + f"{row[0] / row[2]:>10.2f}"
              + f"   (n={counts[('n', group)]})")
    ratio = mape("forecast", "all") / mape("naive", "all")
    print()
    print(f"ratio forecast/naive MAPE: {ratio:.2f}")
    met = ratio < 1.0 and all(mape("forecast", name) < mape("naive", name) for name, _, _ in BUCKETS)
    print(f"goal: forecast beats naive same-hour-last-week: {'MET' if met else 'NOT MET'}")
    print(f"elapsed: {time.perf_counter() - started:.1f} s with {opts.workers} worker(s)")


if __name__ == "__main__":
    main()
