"""What kind of day a local (Asia/Shanghai) date is, as far as crowds are concerned.

Crowds follow the working calendar more than the weekday: a public holiday on a
Thursday fills the streets like a Saturday, and a festival lifts every hour of
the day in the districts it covers.  The forecaster and the simulator both ask
this one object, so they cannot disagree about which days are special.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

DAY_KINDS = ("holiday", "festival", "weekend", "weekday")

# Shenzhen has had no daylight saving since 1991, so a fixed offset is exact and much cheaper
# than a ZoneInfo conversion in the forecaster's inner loops.
LOCAL_OFFSET = timedelta(hours=8)
# Nightlife belongs to the evening before: 01:00 on a Saturday is still Friday night's crowd.
DAY_STARTS_AT = 5


def local_time(at: datetime) -> datetime:
    """The Asia/Shanghai wall-clock time of an aware instant, as a naive datetime."""
    if at.tzinfo is None:
        raise ValueError("timezone-aware datetime required")
    return at.astimezone(UTC).replace(tzinfo=None) + LOCAL_OFFSET


def crowd_day(at: datetime) -> date:
    """The local date whose crowd this instant belongs to (hours before 05:00 count to the day before)."""
    return (local_time(at) - timedelta(hours=DAY_STARTS_AT)).date()


def date_range(first: date, last: date) -> frozenset[date]:
    """Every date from first to last, both included (festival and holiday spans are inclusive)."""
    if last < first:
        return frozenset()
    return frozenset(first + timedelta(days=i) for i in range((last - first).days + 1))


def _days(*spans: tuple[date, date]) -> frozenset[date]:
    out: set[date] = set()
    for first, last in spans:
        out |= date_range(first, last)
    return frozenset(out)


# PRC public holidays (days off, 放假) from the State Council notices.  2026 follows the notice
# published in November 2025.  The 2027 notice did not exist when this was written (it usually
# appears in November of the year before): the 2027 spans below are a best estimate from the
# lunar dates (Spring Festival 2027-02-06, Qingming 04-05, Dragon Boat 06-09, Mid-Autumn 09-15)
# and the usual pattern of the post-2025 rules; check them against the official notice.
MAINLAND_HOLIDAYS_2026_2027: frozenset[date] = _days(
    # 2026 (official)
    (date(2026, 1, 1), date(2026, 1, 3)),  # New Year
    (date(2026, 2, 15), date(2026, 2, 23)),  # Spring Festival, 9 days
    (date(2026, 4, 4), date(2026, 4, 6)),  # Qingming
    (date(2026, 5, 1), date(2026, 5, 5)),  # Labour Day
    (date(2026, 6, 19), date(2026, 6, 21)),  # Dragon Boat
    (date(2026, 9, 25), date(2026, 9, 27)),  # Mid-Autumn
    (date(2026, 10, 1), date(2026, 10, 7)),  # National Day
    # 2027 (estimated, see above)
    (date(2027, 1, 1), date(2027, 1, 3)),  # New Year (Fri–Sun)
    (date(2027, 2, 5), date(2027, 2, 13)),  # Spring Festival, eve Feb 5
    (date(2027, 4, 3), date(2027, 4, 5)),  # Qingming (Sat–Mon)
    (date(2027, 5, 1), date(2027, 5, 5)),  # Labour Day
    (date(2027, 6, 9), date(2027, 6, 9)),  # Dragon Boat falls on a Wednesday: likely the single day
    (date(2027, 9, 15), date(2027, 9, 15)),  # Mid-Autumn, a Wednesday
    (date(2027, 10, 1), date(2027, 10, 7)),  # National Day
)

# Weekend days that are working days (调休 make-up days): offices and shops run a weekday rhythm.
# 2026 from the same notice; 2027 unknown, so none are listed rather than guessed.
MAINLAND_WORKDAYS_2026_2027: frozenset[date] = frozenset(
    {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
)


def festival_days(spans: Iterable[tuple[date, date]]) -> frozenset[date]:
    """The union of inclusive (starts_on, ends_on) festival spans."""
    return _days(*spans)


@dataclass(frozen=True)
class Calendar:
    """Special days of one area: festivals of its district and the public holidays.

    `workdays` are weekend dates worked as weekdays; it defaults to none so that a
    calendar built from festivals and holidays alone still treats every Saturday as a weekend.
    """

    festival_days: frozenset[date]
    holidays: frozenset[date]
    workdays: frozenset[date] = field(default_factory=frozenset)

    def day_kind(self, day: date) -> str:
        """"holiday" | "festival" | "weekend" | "weekday"; a holiday outranks a festival, which outranks a weekend."""
        if day in self.holidays:
            return "holiday"
        if day in self.festival_days:
            return "festival"
        return "weekend" if self.is_rest_day(day) else "weekday"

    def is_rest_day(self, day: date) -> bool:
        """Whether people are off work: what shapes the daily rhythm, festival or not."""
        if day in self.holidays:
            return True
        if day in self.workdays:
            return False
        return day.weekday() >= 5
