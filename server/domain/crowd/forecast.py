"""Hour-by-hour crowd forecasts for one area: pure functions over its hourly history.

The model, per target hour t (a UTC hour start after now):

1. Baseline: a robust mean (median blended with a trimmed mean) of the same local weekday and
   hour over the last six weeks.  Days whose rhythm differs (a holiday Thursday is no Thursday)
   are left out, and festival and holiday samples are first divided by their day factor so a
   past festival does not inflate a normal week.  Too few samples: the same hour over days of the
   same rhythm (work day or rest day); then the same hour over any day; then a built-in profile.
2. Day factor: a festival or holiday target is multiplied by a factor learned from history (the
   median log ratio of special-day hours to the same hour on nearby normal days, per local hour,
   shrunk towards the all-hours ratio, which is shrunk towards the prior ×1.3 festival / ×1.4
   holiday).  Because baselines are normalised the factor applies exactly when the target day's
   kind differs from the baseline days'.
3. Live blending, in two parts, ratios clamped to 0.3–3 and averaged in log terms:
   - day level: observed / expected over today's complete hours, shrunk towards half of
     yesterday's (in log terms) when today has few hours yet: weather and events last all day;
   - surge: the live value (and, with less weight, the last two complete hours) over baseline ×
     day level: crowds that come and go within the hour.
   forecast_k = baseline_k × day level × (1 + (surge − 1) × DECAY^k), k hours ahead (DECAY 0.7);
   for hours on the next day the day level is halved again in log terms.  With no history today
   and yesterday this is the plain deviation = live / baseline(now's hour) rule.
4. Confidence: how many samples stand behind the baseline and how it was found (a prior day
   factor costs up to 20 %), raised early on by live data, falling with the horizon.

"Day" throughout is calendar.crowd_day: hours before 05:00 belong to the previous evening.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from server.domain.crowd.calendar import DAY_STARTS_AT, LOCAL_OFFSET, Calendar

HOUR = timedelta(hours=1)
WEEK = timedelta(weeks=1)

BASELINE_WEEKS = 6
FACTOR_WEEKS = 12  # long enough to have seen last month's holiday, short enough to track a changing area
# all the history forecast() looks at: a special day's normal references reach four weeks either side
HISTORY_WEEKS = FACTOR_WEEKS + 4
PRIOR_FACTOR = {"festival": 1.3, "holiday": 1.4}
DECAY = 0.7
RECENT_HOURS = 2  # complete hours before now that join the live value in the surge
PERSIST = 0.5  # share (in log terms) of a day's deviation expected to carry over to the next day
DAY_PRIOR_HOURS = 3.0  # today's hours of evidence that weigh as much as yesterday's carried-over level
MIN_LEVEL = 3.0  # percent: below this ratios are mostly counting noise (empty streets at 04:00)
SPECIAL = ("festival", "holiday")

# Percent by local hour for a generic Shenzhen shopping street, when an area has no history yet.
PRIOR_WORKDAY = (6, 4, 3, 2, 2, 2, 3, 5, 9, 14, 20, 26, 32, 30, 27, 27, 29, 33, 40, 45, 46, 40, 28, 14)
PRIOR_RESTDAY = (10, 6, 4, 3, 2, 2, 3, 4, 8, 16, 26, 34, 40, 40, 40, 41, 43, 47, 53, 57, 57, 50, 36, 20)


@dataclass(frozen=True)
class HourPoint:
    hour: datetime  # UTC, start of the hour
    percent: float
    confidence: float  # 0..1


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("timezone-aware datetime required")
    return at.astimezone(UTC)


def _floor_hour(at: datetime) -> datetime:
    return _utc(at).replace(minute=0, second=0, microsecond=0)


def hourly_means(readings: Iterable[tuple[datetime, float]]) -> dict[datetime, float]:
    """Mean value per UTC hour start, from (aware time, value) pairs such as percents."""
    sums: dict[datetime, float] = defaultdict(float)
    counts: dict[datetime, int] = defaultdict(int)
    for at, value in readings:
        hour = _floor_hour(at)
        sums[hour] += value
        counts[hour] += 1
    return {hour: sums[hour] / counts[hour] for hour in sorted(sums)}


def _robust_mean(values: list[float]) -> float:
    """Half median, half mean without the extremes: one spike or sensor fault barely moves it."""
    s = sorted(values)
    trimmed = s[1:-1] if len(s) >= 4 else s
    return 0.5 * _median(s) + 0.5 * sum(trimmed) / len(trimmed)


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


@dataclass(frozen=True, slots=True)
class _Baseline:
    normal: float  # what a normal day of the target's rhythm would see
    samples: int
    level: int  # 1 same weekday, 2 same rhythm, 3 any day, 4 built-in prior


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_LOCAL_H = int(LOCAL_OFFSET.total_seconds()) // 3600
_DAY_H = 24
_WEEK_H = 168


def _index(t: datetime) -> int:
    """Hours since the epoch: the model works on integers, which hash and add far faster than datetimes."""
    return (t - _EPOCH) // HOUR


class _Model:
    """One area's history as {hour index: percent}, cut at the current hour so nothing later leaks in."""

    def __init__(self, history: Mapping[datetime, float], cutoff: datetime, calendar: Calendar) -> None:
        self.cut = _index(cutoff)
        oldest = self.cut - HISTORY_WEEKS * _WEEK_H
        data: dict[int, float] = {}
        for t, v in history.items():
            i = _index(t)
            if oldest <= i < self.cut:
                data[i] = v
        self.data = data
        self.calendar = calendar
        self._days: dict[int, tuple[str, bool]] = {}
        self.factors: dict[tuple[str, int], float] = {}
        self.factor_weight: dict[str, float] = {}

    @staticmethod
    def crowd_day(i: int) -> int:
        return (i + _LOCAL_H - DAY_STARTS_AT) // _DAY_H

    @staticmethod
    def hour(i: int) -> int:
        return (i + _LOCAL_H) % _DAY_H

    @staticmethod
    def natural(day: int, rest: bool) -> bool:
        """Whether the day keeps its weekday's rhythm (not a holiday Thursday or a make-up Saturday)."""
        return ((day + 3) % 7 >= 5) == rest  # 1970-01-01 was a Thursday

    def info(self, day: int) -> tuple[str, bool]:
        """(day kind, rest day) of a crowd-day index."""
        got = self._days.get(day)
        if got is None:
            d = _EPOCH_DAY + timedelta(days=day)
            got = (self.calendar.day_kind(d), self.calendar.is_rest_day(d))
            self._days[day] = got
        return got

    def factor(self, kind: str, hour: int) -> float:
        if kind not in SPECIAL:
            return 1.0
        return self.factors.get((kind, hour), PRIOR_FACTOR[kind])

    def normalized(self, i: int, rest: bool | None) -> float | None:
        """The sample at i as a normal day would have had it; None if absent or (rest given) of another rhythm."""
        v = self.data.get(i)
        if v is None:
            return None
        kind, r = self.info(self.crowd_day(i))
        if rest is not None and r != rest:
            return None
        return v / self.factor(kind, self.hour(i))

    def baseline(self, i: int) -> _Baseline:
        day = self.crowd_day(i)
        _, rest = self.info(day)
        samples: list[float] = []
        if self.natural(day, rest):  # a plain weekday or weekend: its own weekday is the best peer
            for w in range(1, BASELINE_WEEKS + 1):
                v = self.normalized(i - w * _WEEK_H, rest)
                if v is not None:
                    samples.append(v)
            if len(samples) >= 2:
                return _Baseline(_robust_mean(samples), len(samples), 1)
        for level, want in ((2, rest), (3, None)):
            samples = []
            for d in range(1, BASELINE_WEEKS * 7 + 1):
                v = self.normalized(i - d * _DAY_H, want)
                if v is not None:
                    samples.append(v)
            if len(samples) >= (2 if level == 2 else 1):
                return _Baseline(_robust_mean(samples), len(samples), level)
        prior = PRIOR_RESTDAY if rest else PRIOR_WORKDAY
        return _Baseline(float(prior[self.hour(i)]), 0, 4)

    def expected(self, i: int) -> tuple[float, _Baseline]:
        b = self.baseline(i)
        kind, _ = self.info(self.crowd_day(i))
        return b.normal * self.factor(kind, self.hour(i)), b

    def learn_factors(self) -> None:
        """Per (kind, local hour) multipliers of special days over normal ones, shrunk towards priors."""
        logs: dict[tuple[str, int], list[float]] = defaultdict(list)
        last_day = self.crowd_day(self.cut - 1)
        for day in range(last_day - FACTOR_WEEKS * 7, last_day + 1):
            kind, rest = self.info(day)
            if kind not in SPECIAL:
                continue
            # normal days of the same rhythm on both sides: same weekday if it keeps its rhythm, else any
            steps = [7 * w for w in (1, 2, 3, 4)] if self.natural(day, rest) else list(range(1, 15))
            refs = []
            for s in steps:
                for other in (day - s, day + s):
                    k, r = self.info(other)
                    if r == rest and k not in SPECIAL:
                        refs.append(other - day)
            if len(refs) < 2:
                continue
            first = day * _DAY_H + DAY_STARTS_AT - _LOCAL_H  # index of 05:00 local on that day
            for i in range(first, min(first + _DAY_H, self.cut)):
                v = self.data.get(i)
                if v is None or v < 1.0:
                    continue
                values = [x for x in (self.data.get(i + off * _DAY_H) for off in refs) if x is not None]
                if len(values) < 2:
                    continue
                ref = _median(values)
                if ref >= MIN_LEVEL:
                    logs[(kind, self.hour(i))].append(math.log(v / ref))
        for kind in SPECIAL:
            all_logs = [x for (k, _), xs in logs.items() if k == kind for x in xs]
            # about four special days of evidence weigh as much as the prior
            overall = (sum(all_logs) + 96 * math.log(PRIOR_FACTOR[kind])) / (len(all_logs) + 96)
            self.factor_weight[kind] = len(all_logs) / (len(all_logs) + 96)
            for hour in range(24):
                xs = logs.get((kind, hour), [])
                n0 = 6.0  # hours of evidence that weigh as much as the all-hours ratio
                mid = _median(xs) if xs else overall
                value = (len(xs) * mid + n0 * overall) / (len(xs) + n0)
                self.factors[(kind, hour)] = min(3.0, max(0.5, math.exp(value)))


def _quality(b: _Baseline) -> float:
    n = b.samples
    if b.level == 1:
        return 0.9 * n / (n + 1.5)
    if b.level == 2:
        return 0.7 * n / (n + 3.0)
    if b.level == 3:
        return 0.45 * n / (n + 3.0)
    return 0.12


def _log_ratio(observed: float, expected: float) -> tuple[float, float]:
    """(log of observed/expected clamped to 0.3–3, weight); near-empty hours weigh little, as a few
    people more or less make a big ratio there."""
    if expected < MIN_LEVEL:
        return 0.0, 0.0
    ratio = min(3.0, max(0.3, max(observed, 0.0) / expected))
    return math.log(ratio), min(1.0, expected / (3 * MIN_LEVEL))


@dataclass(frozen=True, slots=True)
class _Deviation:
    day: float  # log of how far today runs above (below) the baseline: weather, a crowd-pulling event
    surge: float  # log of the short-lived extra in the last hour or so, on top of today's level
    observed: bool  # whether the live value or the last hours back the surge


def _deviation(model: _Model, live_percent: float | None) -> _Deviation:
    """How far the area runs from its baseline today and right now.

    The day level comes from today's complete hours (since 05:00), shrunk towards a part of
    yesterday's: a rainy or busy spell lasts more than a day.  The surge is what the live value
    and the last complete hours add on top of that level, and fades within hours.
    """
    today = model.crowd_day(model.cut)
    first_today = today * _DAY_H + DAY_STARTS_AT - _LOCAL_H

    def mean_log(start: int, end: int) -> tuple[float, float]:
        total = weight = 0.0
        for i in range(start, end):
            v = model.data.get(i)
            if v is not None:
                x, w = _log_ratio(v, model.expected(i)[0])
                total += w * x
                weight += w
        return (total / weight if weight else 0.0), weight

    yesterday, _ = mean_log(first_today - _DAY_H, first_today)
    today_log, t_weight = mean_log(first_today, model.cut)
    day = (t_weight * today_log + DAY_PRIOR_HOURS * PERSIST * yesterday) / (t_weight + DAY_PRIOR_HOURS)
    pairs: list[tuple[float, int, float]] = []  # (observed, hour index, weight)
    if live_percent is not None:
        pairs.append((live_percent, model.cut, 1.0))
    for j in range(1, RECENT_HOURS + 1):
        v = model.data.get(model.cut - j)
        if v is not None:
            pairs.append((v, model.cut - j, 0.5**j))
    total = weight = 0.0
    for observed, i, w0 in pairs:
        x, w = _log_ratio(observed, model.expected(i)[0] * math.exp(day))
        total += w0 * w * x
        weight += w0 * w
    surge = total / weight if weight else 0.0
    return _Deviation(day, surge, weight > 0.0)


def forecast(history: Mapping[datetime, float], now: datetime, live_percent: float | None, calendar: Calendar,
             hours: int = 12) -> list[HourPoint]:
    """The next `hours` hour starts after now (the first is floor(now) + 1h), as percent with confidence.

    `history` maps aware UTC hour starts to the mean percent observed in that hour; entries at or
    after floor(now) are ignored (the current hour is incomplete: its value comes as live_percent).
    """
    return _forecast(_fitted(history, now, calendar), live_percent, hours)


def _fitted(history: Mapping[datetime, float], now: datetime, calendar: Calendar) -> _Model:
    if history:
        first = next(iter(history))
        if first.tzinfo is None:
            raise ValueError("history keys must be timezone-aware")
    model = _Model(history, _floor_hour(now), calendar)
    model.learn_factors()
    return model


def _forecast(model: _Model, live_percent: float | None, hours: int) -> list[HourPoint]:
    cutoff = _EPOCH + model.cut * HOUR
    dev = _deviation(model, live_percent)
    today = model.crowd_day(model.cut)
    points: list[HourPoint] = []
    for k in range(1, hours + 1):
        i = model.cut + k
        expected, b = model.expected(i)
        day = model.crowd_day(i)
        kind, _ = model.info(day)
        quality = _quality(b)
        if kind in SPECIAL:
            # a prior factor is a guess about this area; a learned one is evidence
            quality *= 0.8 + 0.2 * model.factor_weight[kind]
        fade = DECAY**k
        day_log = dev.day * PERSIST ** (day - today)
        deviation = min(3.0, max(0.3, math.exp(day_log) * (1.0 + (math.exp(dev.surge) - 1.0) * fade)))
        if dev.observed:
            quality += (1.0 - quality) * 0.5 * fade
        confidence = quality / (1.0 + 0.05 * k)
        points.append(HourPoint(cutoff + k * HOUR, max(0.0, expected * deviation), min(1.0, max(0.01, confidence))))
    return points


def naive_same_hour_last_week(history: Mapping[datetime, float], now: datetime, hours: int = 12) -> list[HourPoint]:
    """Each hour as it was a week before (two weeks if that is missing): the bar a forecast must clear."""
    cutoff = _floor_hour(now)
    points: list[HourPoint] = []
    for k in range(1, hours + 1):
        t = cutoff + k * HOUR
        for weeks, confidence in ((1, 0.5), (2, 0.3)):
            s = t - weeks * WEEK
            v = history.get(s) if s < cutoff else None
            if v is not None:
                points.append(HourPoint(t, v, confidence))
                break
        else:
            points.append(HourPoint(t, 0.0, 0.0))
    return points


def typical(history: Mapping[datetime, float], now: datetime, hours: Iterable[datetime],
            calendar: Calendar) -> list[float]:
    """The usual percent of each given UTC hour start: the forecaster's baseline times its festival or
    holiday factor, without today's live deviation (what "popular times" draws as the typical day)."""
    return _typical(_fitted(history, now, calendar), hours)


def _typical(model: _Model, hours: Iterable[datetime]) -> list[float]:
    return [max(0.0, model.expected(_index(_floor_hour(t)))[0]) for t in hours]


def typical_and_forecast(history: Mapping[datetime, float], now: datetime, live_percent: float | None,
                         calendar: Calendar, usual: Iterable[datetime],
                         hours: int) -> tuple[list[float], list[HourPoint]]:
    """typical() of the `usual` hours and forecast() of the next `hours`, from one fitted model."""
    model = _fitted(history, now, calendar)
    return _typical(model, usual), (_forecast(model, live_percent, hours) if hours else [])
