"""Holiday exceptions: a date whose hours replace the weekly ones (closed for 春节, late for a festival).

With no exception near the moment asked about, the weekly schedule answers on
its own; otherwise the three days around it are laid out with the exception
days' spans in place of their weekdays', spans past midnight included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from server.domain.merchants.hours import (
    SHANGHAI,
    HoursError,
    Span,
    closes_at,
    is_open,
    merge_intervals,
    parse_span,
)

Exceptions = Mapping[date, tuple[Span, ...]]
MAX_EXCEPTIONS = 60


def parse_exceptions(raw: Mapping[str, Sequence[str]]) -> dict[date, tuple[Span, ...]]:
    if len(raw) > MAX_EXCEPTIONS:
        raise HoursError(f"at most {MAX_EXCEPTIONS} exception dates")
    out: dict[date, tuple[Span, ...]] = {}
    for text, spans in raw.items():
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise HoursError(f"{text!r} is not a date YYYY-MM-DD") from None
        out[day] = tuple(parse_span(day.weekday(), s) for s in spans)
    return out


def _near(exceptions: Exceptions, day: date) -> bool:
    return any(day + timedelta(days=d) in exceptions for d in (-1, 0, 1))


def _intervals(weekly: Sequence[Span], exceptions: Exceptions, day: date) -> list[tuple[int, int]]:
    """Merged minutes from the local midnight starting `day - 1`, for days day-1 .. day+1."""
    raw: list[tuple[int, int]] = []
    for offset in range(3):
        current = day + timedelta(days=offset - 1)
        spans = exceptions[current] if current in exceptions else \
            [s for s in weekly if s.day == current.weekday()]
        raw.extend((offset * 1440 + s.start, offset * 1440 + s.end) for s in spans)
    return merge_intervals(raw)


def _locate(at: datetime) -> tuple[date, int]:
    local = at.astimezone(SHANGHAI)
    return local.date(), 1440 + local.hour * 60 + local.minute


def open_at(weekly: Sequence[Span], exceptions: Exceptions, at: datetime) -> bool:
    day, minute = _locate(at)
    if not _near(exceptions, day):
        return is_open(weekly, at)
    return any(start <= minute < end for start, end in _intervals(weekly, exceptions, day))


def closing_at(weekly: Sequence[Span], exceptions: Exceptions, at: datetime) -> str | None:
    day, minute = _locate(at)
    if not _near(exceptions, day) and not _near(exceptions, day + timedelta(days=1)):
        return closes_at(weekly, at)
    for start, end in _intervals(weekly, exceptions, day):
        if start <= minute < end:
            return None if end >= 3 * 1440 else f"{end % 1440 // 60:02d}:{end % 60:02d}"
    return None
