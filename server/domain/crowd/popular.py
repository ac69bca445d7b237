"""Popular times: an area's usual day hour by hour, its quietest good hours, and what the next hours hold.

Pure functions over numbers the forecaster already gives (typical percents per local hour, the live
percent, the live-blended forecast of the coming hours), so every shape of curve can be tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from server.domain.crowd.calendar import LOCAL_OFFSET, crowd_day
from server.domain.crowd.forecast import HourPoint

# Shops of a Shenzhen shopping street open around 10:00 and close around 22:00: the best hours are
# looked for inside that span, or a quiet 04:00 would always win.
OPEN_FROM, OPEN_UNTIL = 10, 22
BEST_SPAN = 2  # hours: long enough for an errand, short enough to be a real recommendation
MARGIN = 5.0  # percentage points a coming hour must differ from now by to count as busier or calmer
QUIET_FLOOR = 15.0  # below this everywhere ahead, "it stays quiet" says more than any peak
USUAL_RATIO = 1.25  # live over usual: beyond this (and MARGIN points) the day is unusual
HORIZON = 23  # hours ahead the summary may look at: it keeps to those of the same shopping day


@dataclass(frozen=True, slots=True)
class PopularHour:
    hour: int  # local hour 0..23
    starts_at: datetime  # UTC
    percent: float  # the live value on the current hour of today, else the typical one
    typical: float
    live: bool


@dataclass(frozen=True, slots=True)
class NextHours:
    """What the coming hours hold, as one of a few shapes a shopper can act on.

    kind: "peak" (a busier hour ahead: at, percent), "dip" (a calmer hour ahead, then busier again),
    "emptying" (calmer from here on), "quiet" (stays nearly empty), "steady" (no real change);
    versus_usual: "busier" | "quieter" | None, live against the usual level of this hour.
    """

    kind: str
    at: datetime | None = None
    percent: float | None = None
    versus_usual: str | None = None


def day_hours(day: date) -> list[datetime]:
    """The UTC starts of the 24 local hours of a local (Asia/Shanghai) date."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - LOCAL_OFFSET
    return [midnight + timedelta(hours=h) for h in range(24)]


def popular_hours(day: date, typical: Sequence[float], now: datetime, live_percent: float | None) -> list[PopularHour]:
    """24 hours of a local date; the hour now running carries the live value when there is one."""
    if len(typical) != 24:
        raise ValueError("one typical value per local hour")
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    for h, (start, usual) in enumerate(zip(day_hours(day), typical, strict=True)):
        live = live_percent is not None and start == current
        out.append(PopularHour(h, start, round(live_percent if live and live_percent is not None else usual, 1),
                               round(usual, 1), live))
    return out


def best_hours(hours: Sequence[PopularHour], now: datetime) -> tuple[int, int] | None:
    """(first local hour, end hour) of the calmest BEST_SPAN hours while shops are open, by typical level;
    on today only windows not yet begun (the hour now running counts). None when none is left."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    best: tuple[float, int] | None = None
    for start in range(OPEN_FROM, OPEN_UNTIL - BEST_SPAN + 1):
        if hours[start].starts_at < current:
            continue
        mean = sum(h.typical for h in hours[start:start + BEST_SPAN]) / BEST_SPAN
        if best is None or mean < best[0] - 0.05:  # ties go to the earlier window
            best = (mean, start)
    return None if best is None else (best[1], best[1] + BEST_SPAN)


def next_hours(now: datetime, now_percent: float, ahead: Sequence[HourPoint],
               usual_now: float | None = None) -> NextHours:
    """The shape of the rest of the shopping day (until 05:00, when the next one begins) against now.

    The busiest hour ahead is named only when it is busier than now: "22:00 busiest (27 %)" at 64 % now
    would be false.  Otherwise a fall that fills again names its lowest hour before it does, and only a
    fall that never picks up again is "emptier from here on".
    """
    versus = None
    if usual_now is not None and usual_now >= 3.0:
        if now_percent >= usual_now * USUAL_RATIO and now_percent - usual_now >= MARGIN:
            versus = "busier"
        elif now_percent * USUAL_RATIO <= usual_now and usual_now - now_percent >= MARGIN:
            versus = "quieter"
    today = crowd_day(now)
    coming = [p for p in ahead[:HORIZON] if crowd_day(p.hour) == today]
    top = max((p.percent for p in coming), default=0.0)
    if max(now_percent, top) < QUIET_FLOOR:
        return NextHours("quiet", versus_usual=versus)
    if not coming:  # the small hours: what is left of the night only empties
        return NextHours("emptying", versus_usual=versus)
    peak = max(coming, key=lambda p: p.percent)  # the first of equal maxima
    if peak.percent >= now_percent + MARGIN:
        return NextHours("peak", peak.hour, round(peak.percent), versus)
    low = coming[0]
    for p in coming[1:]:
        if p.percent < low.percent:
            low = p
        elif p.percent >= low.percent + 2 * MARGIN and low.percent <= now_percent - MARGIN:
            return NextHours("dip", low.hour, round(low.percent), versus)  # it fills again after low
    if low.percent <= now_percent - MARGIN:
        return NextHours("emptying", versus_usual=versus)
    return NextHours("steady", versus_usual=versus)


def usual_day(hours: Sequence[PopularHour]) -> NextHours:
    """For a day still to come: its usual busiest hour (kind "peak"), or "quiet" if it stays nearly empty."""
    peak = max(hours[OPEN_FROM:OPEN_UNTIL], key=lambda h: h.typical)
    if peak.typical < QUIET_FLOOR:
        return NextHours("quiet")
    return NextHours("peak", peak.starts_at, round(peak.typical))
