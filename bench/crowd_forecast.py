"""Benchmark: the crowd forecaster against "same hour last week", back-tested on simulated history.

    python bench/crowd_forecast.py [--workers 2] [--every 3] [--seed 20261120]

For every area in content/districts.yaml, simulates 15-minute occupancy readings
(server.domain.crowd.simulate) from Monday 2026-08-03 to Saturday 2026-11-28 (local), with the
area's district festivals from content/festivals.yaml, the mainland public holidays and make-up
workdays; every third area loses a few hours to a sensor dropout.  The readings become hourly
mean percents.

Back-test: every `--every` hours in two windows, "now" is HH:45.  The forecaster sees only hours
before HH:00 (it is handed the last 16 weeks before the cut-off) and, as the live value, the mean of the readings
taken at HH:00, HH:15 and HH:30.  Its next 12 hours are compared with the simulated hourly means,
as are the naive forecast's.  The windows are chosen to hold every kind of day:

* Sep 21 - Oct 11: the Mid-Autumn (Sep 25-27) and National Day (Oct 1-7) holidays, met with the
  holiday prior and then learned from, the make-up workdays Sep 20 and Oct 10, and the Golden Week
  festival's last day (Oct 8, four districts);
* Nov 13 - 27: normal days (Nov 16-19 everywhere), the tail of Auto Culture Week (Nov 7-15, three
  districts, learned from) and the first week of the Winter Shopping Season (from Nov 20, every
  district, met cold).

MAPE counts only points whose actual is at least 5 % (a near-empty street at 04:00 turns any
error into hundreds of percent).  Prints overall and per horizon bucket (1–3, 4–6, 7–12 h)
MAPE for the forecast, the forecast without live data and the naive forecast, the same split by
target day kind, the ratio forecast/naive and whether the goal is met.
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import resource
import sys
import time
from collections import defaultdict
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
HISTORY_START = datetime(2026, 8, 3) - LOCAL  # naive local midnight → UTC
HISTORY_END = datetime(2026, 11, 28) - LOCAL
# (label, first cut-off, last cut-off): local times turned UTC
WINDOWS = (
    ("Sep 21-Oct 11", datetime(2026, 9, 21) - LOCAL, datetime(2026, 10, 11, 12) - LOCAL),
    ("Nov 13-27", datetime(2026, 11, 13) - LOCAL, datetime(2026, 11, 27, 12) - LOCAL),
)
STEP = timedelta(minutes=15)
HORIZON = 12
MIN_ACTUAL = 5.0
BUCKETS = (("1-3 h", 1, 3), ("4-6 h", 4, 6), ("7-12 h", 7, 12))
METHODS = ("forecast", "no-live", "naive")
CONFIDENCE = (("< 0.3", 0.0, 0.3), ("0.3-0.5", 0.3, 0.5), ("0.5-0.7", 0.5, 0.7), (">= 0.7", 0.7, 1.01))


@dataclass(frozen=True)
class Area:
    id: str
    name: str
    district: str
    capacity: int
    festivals: frozenset[date]
    dropout: bool


class History:
    """The simulated hourly means, sliced so that a forecast is handed only hours before its cut-off."""

    def __init__(self, hourly: dict[datetime, float]) -> None:
        self.keys = sorted(hourly)
        self.values = [hourly[k] for k in self.keys]

    def before(self, cutoff: datetime, weeks: int = 16) -> dict[datetime, float]:
        lo = bisect.bisect_left(self.keys, cutoff - timedelta(weeks=weeks))
        hi = bisect.bisect_left(self.keys, cutoff)
        return dict(zip(self.keys[lo:hi], self.values[lo:hi], strict=True))


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
    for label, first, last in WINDOWS:
        backtest(calendar, by_time, hourly, label, first.replace(tzinfo=UTC), last.replace(tzinfo=UTC), every,
                 sums, counts)
    return {"sums": dict(sums), "counts": dict(counts), "area": area.id,
            "kind": area_personality(area.id).kind}


def backtest(calendar: Calendar, by_time: dict[datetime, float], hourly: dict[datetime, float], label: str,
             cut: datetime, last: datetime, every: int, sums: dict[tuple[str, str, str], float],
             counts: dict[tuple[str, str], int]) -> None:
    past = History(hourly)
    while cut <= last:
        now = cut + timedelta(minutes=45)
        live_values = [by_time[cut + i * STEP] for i in range(3) if cut + i * STEP in by_time]
        live = sum(live_values) / len(live_values) if live_values else None
        seen = past.before(cut)
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
                for group in ("all", bucket, kind, label):
                    sums[(method, group, "ape")] += ape
            for group in ("all", bucket, kind, label):
                counts[("n", group)] += 1
            # calibration: the forecast's error by the confidence it claimed
            conf = next(name for name, lo, hi in CONFIDENCE if lo <= results["forecast"][k].confidence < hi)
            sums[("forecast", conf, "ape")] += abs(results["forecast"][k].percent - actual) / actual
            counts[("n", conf)] += 1
        cut += timedelta(hours=every)


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

    kinds: dict[str, int] = defaultdict(int)
    for part in parts:
        kinds[part["kind"]] += 1
    print(f"areas: {len(areas)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
          f"{sum(a.dropout for a in areas)} with a sensor dropout")
    print("history: 2026-08-03 .. 2026-11-27 local, 15-minute readings; back-test cut-offs every "
          f"{opts.every} h at HH:45, 12 h ahead each, in two windows:")
    print("  Sep 21-Oct 11: Mid-Autumn (9-25..27) and National Day (10-01..07) holidays, make-up workdays"
          " 9-20 and 10-10, Golden Week festival to 10-08 (4 districts)")
    print("  Nov 13-27: normal days, Auto Culture Week tail (3 districts), Winter Shopping Season from 11-20 (all)")
    print("live value = mean of the readings HH:00-HH:30; no-live = the same forecast without it")
    print(f"scored points (actual >= {MIN_ACTUAL:.0f} %): {counts[('n', 'all')]}")
    print()
    header = f"{'MAPE %':<16}" + "".join(f"{m:>10}" for m in METHODS) + f"{'f/naive':>10}"
    print(header)
    groups = [("overall", "all")] + [(name, name) for name, _, _ in BUCKETS] + \
        [(f"{k} days", k) for k in ("normal", "festival", "holiday") if counts[("n", k)]] + \
        [(label, label) for label, _, _ in WINDOWS]
    for label, group in groups:
        row = [mape(m, group) for m in METHODS]
        print(f"{label:<16}" + "".join(f"{v:>10.1f}" for v in row) + f"{row[0] / row[2]:>10.2f}"
              + f"   (n={counts[('n', group)]})")
    print()
    print("forecast MAPE by its confidence: " + ", ".join(
        f"{name}: {mape('forecast', name):.1f} % (n={counts[('n', name)]})"
        for name, _, _ in CONFIDENCE if counts[("n", name)]))
    ratio = mape("forecast", "all") / mape("naive", "all")
    print()
    print(f"ratio forecast/naive MAPE: {ratio:.2f}")
    met = ratio < 1.0 and all(mape("forecast", name) < mape("naive", name) for name, _, _ in BUCKETS)
    print(f"goal: forecast beats naive same-hour-last-week: {'MET' if met else 'NOT MET'}")
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    print(f"elapsed: {time.perf_counter() - started:.1f} s with {opts.workers} worker(s), {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
