"""Weekly opening hours in Asia/Shanghai local time, spans past midnight included.

A span is (day, start, end) in minutes from that day's midnight; end may pass
1440 (a bar open 18:00–02:00 has end 1560).  Spans become minutes of the week
so "open now" is one comparison, and quarter-hour slots so MongoDB can filter
on an indexed integer array.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK = 7 * 1440
SLOT = 15
_SPAN = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class HoursError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Span:
    day: int  # 0 = Monday
    start: int  # minutes after that day's midnight
    end: int  # may exceed 1440 for spans past midnight

    def __reduce__(self) -> tuple[type[Span], tuple[int, int, int]]:
        # a content loader's worker process sends ~10 per merchant; a slotted dataclass's own pickling looks
        # its fields up for each object, several times slower
        return Span, (self.day, self.start, self.end)

    def label(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end % 1440 if self.end > 1440 else self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_span(day: int, text: str) -> Span:
    match = _SPAN.match(text)
    if not match:
        raise HoursError(f"{text!r} is not HH:MM-HH:MM")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if start >= 1440 or end > 1440:
        raise HoursError(f"{text!r}: times run from 00:00 to 24:00")
    if start % SLOT or end % SLOT:
        raise HoursError(f"{text!r}: times must be on the quarter hour")
    if end == start:
        raise HoursError(f"{text!r}: a span needs a length")
    if end < start:
        end += 1440  # past midnight
    return Span(day, start, end)


def parse_week(hours: dict[str, list[str]]) -> list[Span]:
    """Spans of a week; overlapping spans simply mean open in either (their union)."""
    unknown = set(hours) - set(DAYS)
    if unknown:
        raise HoursError(f"unknown day {sorted(unknown)[0]!r}; use {', '.join(DAYS)}")
    return [parse_span(day, text) for day, name in enumerate(DAYS) for text in hours.get(name) or []]


def parse_week_cached(hours: dict[str, list[str]]) -> tuple[Span, ...]:
    """parse_week for hours already validated on write; shops share few distinct schedules."""
    return _parse_frozen(tuple(tuple(hours.get(day) or ()) for day in DAYS))


@lru_cache(maxsize=4096)
def _parse_frozen(week: tuple[tuple[str, ...], ...]) -> tuple[Span, ...]:
    return tuple(parse_week({day: list(spans) for day, spans in zip(DAYS, week, strict=True)}))


def merge_intervals(raw: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted half-open (start, end) minute intervals with overlapping and touching ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(raw):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _week_intervals(spans: Sequence[Span]) -> tuple[tuple[int, int], ...]:
    return _merged(tuple(spans))


@lru_cache(maxsize=4096)
def _merged(spans: tuple[Span, ...]) -> tuple[tuple[int, int], ...]:
    """Merged, sorted, half-open minute-of-week intervals; a span past Sunday midnight wraps to Monday."""
    raw: list[tuple[int, int]] = []
    for span in spans:
        start, end = span.day * 1440 + span.start, span.day * 1440 + span.end
        if end > WEEK:
            raw.extend([(start, WEEK), (0, end - WEEK)])
        else:
            raw.append((start, end))
    return tuple(merge_intervals(raw))


def open_slots(spans: Sequence[Span]) -> list[int]:
    """Quarter-hour slots of the week in which the place is open (indexed in MongoDB)."""
    return [slot for start, end in _week_intervals(spans) for slot in range(start // SLOT, end // SLOT)]


def minute_of_week(at: datetime) -> int:
    local = at.astimezone(SHANGHAI)
    return local.weekday() * 1440 + local.hour * 60 + local.minute


def slot_at(at: datetime) -> int:
    return minute_of_week(at) // SLOT


def is_open(spans: Sequence[Span], at: datetime) -> bool:
    minute = minute_of_week(at)
    return any(start <= minute < end for start, end in _week_intervals(spans))


def minutes_to_change(spans: Sequence[Span], minute: int) -> int | None:
    """Minutes from `minute` of the week to the next one at which open-or-closed changes; None when it never does.
    Read from the merged intervals, so a span running into the next week (or across Sunday midnight into
    Monday's first span) is one opening."""
    intervals = _week_intervals(spans)
    if not intervals or intervals == ((0, WEEK),):
        return None  # never open, or always
    for start, end in intervals:
        if start <= minute < end:
            if end == WEEK and intervals[0][0] == 0:  # open on into Monday's first interval
                return WEEK - minute + intervals[0][1]
            return end - minute
        if minute < start:
            return start - minute
    return WEEK - minute + intervals[0][0]  # closed until the week's first opening


def closes_at(spans: Sequence[Span], at: datetime) -> str | None:
    """Local HH:MM at which the current opening ends; None when closed or open around the clock."""
    minute = minute_of_week(at)
    intervals = _week_intervals(spans)
    for start, end in intervals:
        if start <= minute < end:
            if end == WEEK and intervals[0][0] == 0:
                if intervals[0][1] == WEEK:
                    return None
                end = intervals[0][1]  # open across Sunday midnight into Monday
            return _hhmm(end % 1440)
    return None

