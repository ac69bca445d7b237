"""A deterministic simulator of an area's occupancy, for demos, backfill and the forecast benchmark.

The model, in local (Asia/Shanghai) time:

* Expected level.  `expected_percent` mixes three daily shapes: *retail* (opens ~10:00, lunch bump,
  evening peak ~20:00, closes ~22:30), *night-market* (little before 16:00, peak ~21:30, lingers
  past midnight) and *office* (commute, a sharp weekday lunch peak, after-work bump, quiet on rest
  days).  Each area's mix, peak level (30–70 % of capacity), weekend lift, festival lift and holiday
  lift come from a SHA-256 of its id, so every process agrees without configuration; a few id
  words (business, civic, convention…) make CBD areas office-like and old streets night-market-like.
  Rest days (weekends, holidays; not make-up workdays) use later, fuller rest-day shapes; a festival
  multiplies the day by 1 + lift, more in the evening; a holiday by 1 + its own lift.  Hours before
  05:00 belong to the previous day (calendar.crowd_day), so Friday's night market runs into Saturday.
* Noise, from one `random.Random` seeded by (seed, area id):
  - a day factor (weather, events elsewhere): log-normal, AR(1) from day to day (φ 0.6, σ 0.10),
    so a wet week stays wet;
  - an intraday surge: log-normal AR(1) with a ~90 minute memory (σ 0.08), what live data can see
    and a calendar cannot;
  - counting noise: independent log-normal per reading (σ 0.05);
  - spikes: about once per 80 hours a 15–60 minute burst of ×1.3–2.0 (a flash sale, a tour group).
* Dropout: with `dropout=True` one gap of 2–6 hours somewhere in the range yields nothing, as when a
  counter loses power.  The gap comes from its own generator, so the readings outside it are the same
  with or without dropout.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from server.domain.crowd.calendar import Calendar, crowd_day, local_time

KINDS = ("retail", "night-market", "office")
_OFFICE_WORDS = ("business", "civic", "convention", "gangxia", "cbd", "office")
_NIGHT_WORDS = ("old-street", "ancient", "night", "waterfront", "main-street", "sea-world")


@dataclass(frozen=True, slots=True)
class Personality:
    kind: str  # the dominant shape, one of KINDS
    weights: tuple[float, float, float]  # share of retail, night-market and office shapes
    peak: float  # percent of capacity at a normal weekday's busiest hour, roughly
    weekend_lift: float  # rest-day multiplier of the retail and night-market shapes
    festival_lift: float  # a festival adds this share, a little more in the evening
    holiday_lift: float  # a public holiday adds this share on top of the rest-day shape


def _unit(digest: bytes, i: int) -> float:
    return int.from_bytes(digest[2 * i:2 * i + 2], "big") / 65536.0


@lru_cache(maxsize=4096)
def area_personality(area_id: str) -> Personality:
    """The area's stable character: hash-derived so that it needs no configuration and never drifts."""
    digest = hashlib.sha256(area_id.encode()).digest()
    u = [_unit(digest, i) for i in range(8)]
    if any(w in area_id for w in _OFFICE_WORDS):
        kind = "office"
    elif any(w in area_id for w in _NIGHT_WORDS):
        kind = "night-market"
    else:
        kind = "night-market" if u[0] < 0.25 else "office" if u[0] < 0.35 else "retail"
    main = 0.7 + 0.2 * u[1]
    rest = 1.0 - main
    split = u[2]
    primary = KINDS.index(kind)
    others = [i for i in range(3) if i != primary]
    w = [0.0, 0.0, 0.0]
    w[primary] = main
    w[others[0]] = rest * split
    w[others[1]] = rest * (1 - split)
    return Personality(
        kind=kind,
        weights=(w[0], w[1], w[2]),
        peak=30.0 + 40.0 * u[3],
        weekend_lift=1.15 + 0.3 * u[4],
        festival_lift=0.2 + 0.3 * u[5],
        holiday_lift=0.25 + 0.25 * u[6],
    )


def _bump(x: float, mu: float, sigma: float) -> float:
    return math.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _open(x: float, start: float, end: float, soft: float) -> float:
    return 1.0 / (1.0 + math.exp(-(x - start) / soft)) / (1.0 + math.exp(-(end - x) / soft))


# Shapes take the hour of the crowd day, 5.0–29.0, so that a night past midnight is one continuous curve.
def _retail(x: float, rest: bool) -> float:
    if rest:
        return 0.03 + _open(x, 10.0, 23.0, 0.6) * (0.45 + 0.2 * _bump(x, 14.5, 2.0) + 0.45 * _bump(x, 20.5, 1.7))
    return 0.03 + _open(x, 10.0, 22.5, 0.6) * (0.35 + 0.15 * _bump(x, 12.5, 1.0) + 0.55 * _bump(x, 20.0, 1.6))


def _night(x: float, rest: bool) -> float:
    if rest:
        return 0.03 + 0.15 * _bump(x, 13.0, 1.2) + _open(x, 14.0, 26.0, 0.8) * (0.3 + 0.7 * _bump(x, 22.0, 1.7))
    return 0.03 + 0.12 * _bump(x, 12.5, 1.0) + _open(x, 16.0, 25.5, 0.8) * (0.25 + 0.7 * _bump(x, 21.5, 1.5))


def _office(x: float, rest: bool) -> float:
    if rest:
        return 0.02 + _open(x, 10.0, 21.0, 0.7) * (0.18 + 0.12 * _bump(x, 15.0, 2.5))
    return (0.02 + 0.25 * _open(x, 7.5, 20.0, 0.5) + 0.3 * _bump(x, 8.8, 0.6)
            + 0.75 * _bump(x, 12.4, 0.8) + 0.45 * _bump(x, 18.2, 0.8))


def expected_percent(area_id: str, at: datetime, calendar: Calendar) -> float:
    """The noise-free occupancy percent of the area at an aware instant."""
    p = area_personality(area_id)
    day = crowd_day(at)
    local = local_time(at)
    # hours since the crowd day's midnight: 5.0–29.0, so the night after 00:00 stays on its evening's curve
    x = (local - datetime(day.year, day.month, day.day)).total_seconds() / 3600.0
    rest = calendar.is_rest_day(day)
    lift = p.weekend_lift if rest else 1.0
    wr, wn, wo = p.weights
    level = wr * lift * _retail(x, rest) + wn * lift * _night(x, rest) + wo * _office(x, rest)
    kind = calendar.day_kind(day)
    if kind == "festival":
        level *= 1.0 + p.festival_lift * (0.6 + 0.6 * _bump(x, 19.5, 3.0))
    elif kind == "holiday":
        level *= 1.0 + p.holiday_lift
    return p.peak * level


def _gap(area_id: str, seed: int, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    rng = random.Random(f"{seed}:{area_id}:dropout")
    length = timedelta(hours=rng.uniform(2.0, 6.0))
    span = end - start
    if span <= length:
        return start, end
    offset = (span - length) * rng.uniform(0.1, 0.9)
    return start + offset, start + offset + length


def simulated_readings(area_id: str, capacity: int, start: datetime, end: datetime, step: timedelta,
                       calendar: Calendar, seed: int, dropout: bool = False) -> Iterator[tuple[datetime, int]]:
    """(UTC time, occupancy count) every `step` in [start, end); see the module docstring for the model."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("timezone-aware start and end required")
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    rng = random.Random(f"{seed}:{area_id}")
    gap = _gap(area_id, seed, start, end) if dropout else None
    step_h = step.total_seconds() / 3600.0
    surge_phi = math.exp(-step_h / 1.5)
    surge_sd = 0.08
    spike_rate = step_h / 80.0
    day_log = rng.gauss(0.0, 0.10)
    day: date | None = None
    surge = rng.gauss(0.0, surge_sd)
    spike_left = 0.0
    spike_mult = 1.0
    at = start.astimezone(UTC)
    end_utc = end.astimezone(UTC)
    while at < end_utc:
        today = crowd_day(at)
        if day is None:
            day = today
        while day < today:  # steps longer than a day still move the weather once per day crossed
            day_log = 0.6 * day_log + math.sqrt(1 - 0.36) * rng.gauss(0.0, 0.10)
            day = day + timedelta(days=1)
        surge = surge_phi * surge + math.sqrt(1 - surge_phi**2) * rng.gauss(0.0, surge_sd)
        if spike_left <= 0 and rng.random() < spike_rate:
            spike_left = rng.uniform(0.25, 1.0)
            spike_mult = rng.uniform(1.3, 2.0)
        mult = spike_mult if spike_left > 0 else 1.0
        spike_left -= step_h
        noise = rng.gauss(0.0, 0.05)
        percent = expected_percent(area_id, at, calendar) * math.exp(day_log + surge + noise) * mult
        # a spike on a busy festival evening may pass capacity; three times it would be a broken counter
        count = max(0, min(round(capacity * percent / 100.0), 3 * capacity))
        if gap is None or not (gap[0] <= at < gap[1]):
            yield at, count
        at += step
