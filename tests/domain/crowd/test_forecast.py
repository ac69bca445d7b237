"""Unit tests for the crowd calendar, forecaster and simulator (server.domain.crowd)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from server.domain.crowd.calendar import (
    MAINLAND_HOLIDAYS_2026_2027,
    MAINLAND_WORKDAYS_2026_2027,
    Calendar,
    crowd_day,
    date_range,
)
from server.domain.crowd.forecast import HourPoint, forecast, hourly_means, naive_same_hour_last_week
from server.domain.crowd.simulate import area_personality, expected_percent, simulated_readings

LOCAL = timedelta(hours=8)
STEP = timedelta(minutes=15)
PLAIN = Calendar(frozenset(), frozenset())
MAINLAND = Calendar(frozenset(), MAINLAND_HOLIDAYS_2026_2027, MAINLAND_WORKDAYS_2026_2027)
RETAIL = "dongmen"


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """An Asia/Shanghai wall-clock time as an aware UTC datetime."""
    return (datetime(y, m, d, hh, mm) - LOCAL).replace(tzinfo=UTC)


def percents(area_id: str, start: datetime, end: datetime, calendar: Calendar, seed: int = 7,
             capacity: int = 10_000) -> dict[datetime, float]:
    readings = simulated_readings(area_id, capacity, start, end, STEP, calendar, seed)
    return hourly_means((at, 100.0 * count / capacity) for at, count in readings)


@pytest.fixture(scope="module")
def history() -> dict[datetime, float]:
    """Seven weeks of a retail area without special days, up to Tuesday 2026-11-24 00:00 local."""
    return percents(RETAIL, local(2026, 10, 13), local(2026, 11, 24), PLAIN)


# --- calendar -------------------------------------------------------------------------------------


def test_day_kinds_rank_holiday_over_festival_over_weekend() -> None:
    sat, sun, mon = date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23)
    cal = Calendar(festival_days=frozenset({sun, mon}), holidays=frozenset({mon}))
    assert cal.day_kind(date(2026, 11, 20)) == "weekday"
    assert cal.day_kind(sat) == "weekend"
    assert cal.day_kind(sun) == "festival"
    assert cal.day_kind(mon) == "holiday"


def test_mainland_holidays_and_make_up_workdays() -> None:
    assert MAINLAND.day_kind(date(2026, 10, 1)) == "holiday"  # National Day, a Thursday
    assert MAINLAND.day_kind(date(2026, 2, 17)) == "holiday"  # Spring Festival 2026
    assert MAINLAND.day_kind(date(2027, 2, 6)) == "holiday"  # Spring Festival 2027 (estimated spans)
    assert MAINLAND.day_kind(date(2026, 10, 10)) == "weekday"  # a Saturday worked in exchange
    assert MAINLAND.is_rest_day(date(2026, 10, 1)) and not MAINLAND.is_rest_day(date(2026, 10, 10))
    assert date_range(date(2026, 10, 1), date(2026, 10, 7)) <= MAINLAND_HOLIDAYS_2026_2027
    assert all(d.weekday() >= 5 for d in MAINLAND_WORKDAYS_2026_2027)


def test_small_hours_belong_to_the_previous_evening() -> None:
    assert crowd_day(local(2026, 11, 21, 1, 30)) == date(2026, 11, 20)
    assert crowd_day(local(2026, 11, 21, 5)) == date(2026, 11, 21)


# --- forecast -------------------------------------------------------------------------------------


def test_twelve_consecutive_hours_after_now_with_falling_confidence(history: dict[datetime, float]) -> None:
    now = local(2026, 11, 24, 10, 40)
    for live in (None, 30.0):
        points = forecast(history, now, live, PLAIN)
        assert [p.hour for p in points] == [local(2026, 11, 24, 11) + timedelta(hours=k) for k in range(12)]
        assert all(p.hour.tzinfo is not None and p.hour.utcoffset() == timedelta(0) for p in points)
        confidences = [p.confidence for p in points]
        assert all(0 < c <= 1 for c in confidences)
        assert all(a > b for a, b in pairwise(confidences))
        assert all(p.percent >= 0 for p in points)


def test_forecast_follows_the_daily_rhythm(history: dict[datetime, float]) -> None:
    points = forecast(history, local(2026, 11, 24, 7, 10), None, PLAIN)
    by_hour = {(p.hour + LOCAL).hour: p.percent for p in points}
    assert by_hour[19] > by_hour[9] * 1.5


def test_history_from_now_on_is_ignored(history: dict[datetime, float]) -> None:
    now = local(2026, 11, 17, 10, 40)
    past = {t: v for t, v in history.items() if t < local(2026, 11, 17, 10)}
    assert forecast(history, now, 25.0, PLAIN) == forecast(past, now, 25.0, PLAIN)


def test_a_festival_day_raises_the_forecast(history: dict[datetime, float]) -> None:
    now = local(2026, 11, 24, 7, 30)  # all twelve hours fall on Tuesday the 24th
    festive = Calendar(frozenset({date(2026, 11, 24)}), frozenset())
    plain = forecast(history, now, None, PLAIN)
    raised = forecast(history, now, None, festive)
    for p, f in zip(plain, raised, strict=True):
        assert f.percent == pytest.approx(p.percent * 1.3, rel=0.05)  # the prior: no festival in history
        assert f.confidence < p.confidence  # a prior factor is less sure than the history


def test_festival_factor_is_learned_from_history() -> None:
    # a flat 20 % that doubles on festival days: three past festival weekdays teach the factor
    start = local(2026, 10, 1)
    fest = frozenset({date(2026, 10, 21), date(2026, 10, 29), date(2026, 11, 5), date(2026, 11, 12)})
    cal = Calendar(fest, frozenset())
    hist: dict[datetime, float] = {}
    t = start
    while t < local(2026, 11, 12, 8):
        hist[t] = 40.0 if crowd_day(t) in fest else 20.0
        t += timedelta(hours=1)
    points = forecast(hist, local(2026, 11, 12, 7, 30), None, cal)
    assert all(p.percent == pytest.approx(40.0, rel=0.1) for p in points)


def test_a_holiday_weekday_looks_like_a_busy_weekend() -> None:
    hist = percents(RETAIL, local(2026, 8, 17), local(2026, 10, 1), MAINLAND)
    points = forecast(hist, local(2026, 10, 1, 7, 30), None, MAINLAND)  # Thursday, National Day
    thursday = forecast(hist, local(2026, 9, 24, 7, 30), None, MAINLAND)
    assert sum(p.percent for p in points) > 1.3 * sum(p.percent for p in thursday)


def test_live_value_pulls_the_first_hours_and_fades(history: dict[datetime, float]) -> None:
    now = local(2026, 11, 24, 12, 20)
    base = forecast(history, now, None, PLAIN)
    expected_now = forecast(history, now - timedelta(hours=1), None, PLAIN)[0].percent
    live = forecast(history, now, 2 * expected_now, PLAIN)
    ratios = [lv.percent / b.percent for lv, b in zip(live, base, strict=True)]
    assert ratios[0] > 1.4
    assert all(a > b for a, b in pairwise(ratios))
    assert ratios[-1] < 1.05
    low = forecast(history, now, expected_now / 2, PLAIN)
    assert low[0].percent < base[0].percent * 0.75


def test_empty_history_falls_back_to_the_prior_with_low_confidence(history: dict[datetime, float]) -> None:
    now = local(2026, 11, 24, 9, 10)
    points = forecast({}, now, None, PLAIN)
    assert len(points) == 12
    assert all(p.percent > 0 for p in points)
    assert all(0 < p.confidence <= 0.15 for p in points)
    informed = forecast(history, now, None, PLAIN)
    assert all(i.confidence > 3 * p.confidence for i, p in zip(informed, points, strict=True))


def test_gaps_in_history_lower_confidence_but_still_forecast(history: dict[datetime, float]) -> None:
    now = local(2026, 11, 24, 9, 10)
    sparse = {t: v for t, v in history.items() if t.day % 3}
    points = forecast(sparse, now, None, PLAIN)
    assert len(points) == 12 and all(p.percent > 0 for p in points)


def test_naive_datetimes_are_refused(history: dict[datetime, float]) -> None:
    with pytest.raises(ValueError):
        forecast(history, datetime(2026, 11, 24, 9), None, PLAIN)
    with pytest.raises(ValueError):
        hourly_means([(datetime(2026, 11, 24, 9), 1.0)])


def test_naive_forecast_repeats_last_week(history: dict[datetime, float]) -> None:
    now = local(2026, 11, 23, 16, 5)
    points = naive_same_hour_last_week(history, now)
    assert len(points) == 12
    for k, p in enumerate(points, start=1):
        hour = local(2026, 11, 23, 16) + timedelta(hours=k)
        assert p == HourPoint(hour, history[hour - timedelta(weeks=1)], p.confidence)
        assert 0 < p.confidence <= 1


def test_hourly_means_group_by_utc_hour() -> None:
    t = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    means = hourly_means([(t, 10.0), (t + timedelta(minutes=30), 20.0), (t + timedelta(minutes=75), 5.0)])
    assert means == {t: 15.0, t + timedelta(hours=1): 5.0}


# --- simulator ------------------------------------------------------------------------------------


def test_simulator_is_deterministic_per_seed_and_non_negative() -> None:
    start, end = local(2026, 11, 16), local(2026, 11, 23)
    a = list(simulated_readings(RETAIL, 60_000, start, end, STEP, PLAIN, seed=1))
    b = list(simulated_readings(RETAIL, 60_000, start, end, STEP, PLAIN, seed=1))
    c = list(simulated_readings(RETAIL, 60_000, start, end, STEP, PLAIN, seed=2))
    assert a == b
    assert a != c
    assert len(a) == 7 * 96
    assert all(count >= 0 and isinstance(count, int) for _, count in a)
    assert all(at.utcoffset() == timedelta(0) for at, _ in a)


def test_evening_peak_above_the_morning() -> None:
    day = (2026, 11, 18)  # a Wednesday
    assert area_personality(RETAIL).kind == "retail"
    assert expected_percent(RETAIL, local(*day, 20), PLAIN) > 2 * expected_percent(RETAIL, local(*day, 9), PLAIN)
    assert expected_percent(RETAIL, local(*day, 4), PLAIN) < expected_percent(RETAIL, local(*day, 9), PLAIN)


def test_weekend_above_weekday_for_retail_and_not_for_the_cbd() -> None:
    def day_total(area: str, d: int) -> float:
        return sum(expected_percent(area, local(2026, 11, d, h), PLAIN) for h in range(24))

    assert day_total(RETAIL, 21) > 1.1 * day_total(RETAIL, 18)  # Saturday over Wednesday
    cbd = "futian-gangxia"
    assert area_personality(cbd).kind == "office"
    assert expected_percent(cbd, local(2026, 11, 18, 12, 30), PLAIN) > \
        2 * expected_percent(cbd, local(2026, 11, 21, 12, 30), PLAIN)


def test_festival_and_holiday_raise_the_simulated_crowd() -> None:
    wednesday = local(2026, 11, 18, 19)
    festive = Calendar(frozenset({date(2026, 11, 18)}), frozenset())
    holiday = Calendar(frozenset(), frozenset({date(2026, 11, 18)}))
    assert expected_percent(RETAIL, wednesday, festive) > 1.15 * expected_percent(RETAIL, wednesday, PLAIN)
    assert expected_percent(RETAIL, wednesday, holiday) > 1.25 * expected_percent(RETAIL, wednesday, PLAIN)


def test_simulated_days_vary_like_weather() -> None:
    hourly = percents(RETAIL, local(2026, 11, 2), local(2026, 11, 30), PLAIN)
    wednesdays = [hourly[local(2026, 11, d, 20)] for d in (4, 11, 18, 25)]
    assert max(wednesdays) / min(wednesdays) > 1.05


def test_dropout_leaves_a_gap_of_hours_and_keeps_the_rest() -> None:
    start, end = local(2026, 11, 16), local(2026, 11, 19)
    full = list(simulated_readings(RETAIL, 60_000, start, end, STEP, PLAIN, seed=3))
    gappy = list(simulated_readings(RETAIL, 60_000, start, end, STEP, PLAIN, seed=3, dropout=True))
    assert set(gappy) < set(full)
    times = [at for at, _ in gappy]
    longest = max(b - a for a, b in pairwise(times))
    assert timedelta(hours=2) <= longest <= timedelta(hours=6, minutes=15)
    assert len(full) - len(gappy) == longest // STEP - 1  # one gap, nothing else lost
