"""Quiet hours and the daily cap's day, at explicit Asia/Shanghai times (UTC+8, no daylight saving)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from server.domain.push import policy
from server.push.encode import Urgency

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp()


@pytest.mark.parametrize(("hour", "minute", "quiet"), [
    (22, 0, True), (21, 59, False), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False), (12, 0, False)])
def test_default_window_wraps_midnight(hour: int, minute: int, quiet: bool) -> None:
    assert policy.is_quiet((22, 8), at(29, hour, minute)) is quiet


def test_quiet_ends_at_the_next_end_hour() -> None:
    assert policy.quiet_ends((22, 8), at(29, 22, 0)) == at(30, 8, 0)  # tomorrow morning
    assert policy.quiet_ends((22, 8), at(30, 7, 59)) == at(30, 8, 0)  # this morning
    assert policy.quiet_ends((22, 8), at(30, 0, 0)) == at(30, 8, 0)
    assert policy.quiet_ends((22, 8), at(30, 8, 0)) is None
    assert policy.quiet_ends((22, 8), at(29, 21, 59)) is None


def test_a_window_that_does_not_wrap() -> None:
    window = (13, 15)
    assert [policy.is_quiet(window, at(29, h, m)) for h, m in ((12, 59), (13, 0), (14, 59), (15, 0), (23, 0))] == \
        [False, True, True, False, False]
    assert policy.quiet_ends(window, at(29, 13, 30)) == at(29, 15, 0)
    assert policy.quiet_ends(window, at(29, 15, 0)) is None


def test_no_window_is_never_quiet() -> None:
    for hour in range(24):
        assert not policy.is_quiet(None, at(29, hour))
        assert policy.quiet_ends(None, at(29, hour)) is None
        assert policy.defer_until(None, Urgency.NORMAL, at(29, hour)) is None


def test_high_urgency_ignores_quiet_hours() -> None:
    night = at(29, 23, 0)
    assert policy.defer_until((22, 8), Urgency.HIGH, night) is None
    for urgency in (Urgency.VERY_LOW, Urgency.LOW, Urgency.NORMAL):
        assert policy.defer_until((22, 8), urgency, night) == at(30, 8, 0)
    assert policy.defer_until((22, 8), Urgency.NORMAL, at(30, 8, 0)) is None


def test_the_cap_counts_per_shanghai_day() -> None:
    # 23:30 in Shanghai is 15:30 UTC the same day; 00:30 the next day is still the 29th in UTC
    assert policy.local_day(at(29, 23, 30)) == "2026-11-29"
    assert policy.local_day(at(30, 0, 30)) == "2026-11-30"
    assert datetime.fromtimestamp(at(30, 0, 30), ZoneInfo("UTC")).day == 29
    assert policy.cap_key("abc", at(30, 0, 30)) == "push:cap:2026-11-30:abc"
    assert policy.cap_key("abc", at(29, 23, 59)) != policy.cap_key("abc", at(30, 0, 0))
