"""Unit tests for server.domain.merchants.hours (weekly opening hours, Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.domain.merchants.hours import (
    SHANGHAI,
    SLOT,
    WEEK,
    HoursError,
    Span,
    closes_at,
    is_open,
    minute_of_week,
    open_slots,
    parse_span,
    parse_week,
    slot_at,
)

# 2026-11-23 is a Monday; 2026-11-27 a Friday.
MONDAY = datetime(2026, 11, 23, tzinfo=SHANGHAI)


def local(day: int, hhmm: str) -> datetime:
    """Shanghai local time on the given weekday (0 = Monday) of the week of 2026-11-23."""
    hours, minutes = map(int, hhmm.split(":"))
    return MONDAY + timedelta(days=day, hours=hours, minutes=minutes)


MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "9:00-18:00",  # hours need two digits
        "09:00 - 18:00",
        "09:00-18:00-20:00",
        "0900-1800",
        "09:60-18:00",
        "25:00-26:00",
        "",
        "closed",
    ],
)
def test_bad_format_raises(text: str) -> None:
    with pytest.raises(HoursError):
        parse_span(0, text)


@pytest.mark.parametrize("text", ["24:30-02:00", "10:00-24:30", "24:00-02:00"])
def test_times_past_24_00_raise(text: str) -> None:
    with pytest.raises(HoursError):
        parse_span(0, text)


@pytest.mark.parametrize("text", ["10:10-12:00", "10:00-12:05", "09:59-18:00"])
def test_times_off_the_quarter_hour_raise(text: str) -> None:
    with pytest.raises(HoursError):
        parse_span(0, text)


@pytest.mark.parametrize("text", ["10:00-10:00", "00:00-00:00"])
def test_zero_length_span_raises(text: str) -> None:
    with pytest.raises(HoursError):
        parse_span(0, text)


def test_unknown_day_raises() -> None:
    with pytest.raises(HoursError, match="monday"):
        parse_week({"monday": ["09:00-18:00"]})


def test_hours_error_is_a_value_error() -> None:
    assert issubclass(HoursError, ValueError)


def test_parse_span_values() -> None:
    assert parse_span(TUE, "09:15-18:45") == Span(TUE, 555, 1125)
    assert parse_span(FRI, "18:00-02:00") == Span(FRI, 1080, 1560)
    assert parse_span(SAT, "00:00-24:00") == Span(SAT, 0, 1440)
    assert parse_span(SAT, "22:00-00:00") == Span(SAT, 1320, 1440)


def test_parse_week_skips_missing_and_empty_days() -> None:
    spans = parse_week({"mon": ["09:00-12:00", "14:00-18:00"], "tue": [], "sun": ["10:00-11:00"]})
    assert spans == [Span(MON, 540, 720), Span(MON, 840, 1080), Span(SUN, 600, 660)]


def test_span_label() -> None:
    assert parse_span(FRI, "18:00-02:00").label() == "18:00-02:00"
    assert parse_span(FRI, "08:00-24:00").label() == "08:00-24:00"


# --- open / closed ---------------------------------------------------------------------------


def test_span_past_midnight_is_open_into_the_next_day() -> None:
    spans = parse_week({"fri": ["18:00-02:00"]})
    assert not is_open(spans, local(FRI, "17:45"))
    assert is_open(spans, local(FRI, "18:00"))
    assert is_open(spans, local(FRI, "23:59"))
    assert is_open(spans, local(SAT, "01:30"))
    assert is_open(spans, local(SAT, "01:59"))
    assert not is_open(spans, local(SAT, "02:00"))
    assert closes_at(spans, local(SAT, "01:30")) == "02:00"
    assert closes_at(spans, local(FRI, "20:00")) == "02:00"
    assert not is_open(spans, local(THU, "01:30"))  # only the night after Friday


def test_sunday_span_wraps_into_monday() -> None:
    spans = parse_week({"sun": ["22:00-03:00"]})
    assert is_open(spans, local(SUN, "22:00"))
    assert is_open(spans, local(SUN, "23:45"))
    assert is_open(spans, local(MON, "00:00"))
    assert is_open(spans, local(MON, "02:45"))
    assert not is_open(spans, local(MON, "03:00"))
    assert not is_open(spans, local(SUN, "21:45"))
    assert closes_at(spans, local(SUN, "23:00")) == "03:00"
    assert closes_at(spans, local(MON, "01:00")) == "03:00"
    # the same instant a week later (Monday 2026-11-30 01:00) is open too
    assert is_open(spans, local(MON, "01:00") + timedelta(days=7))


def test_sunday_late_span_joins_monday_early_span() -> None:
    spans = parse_week({"sun": ["18:00-02:00"], "mon": ["00:00-04:00"]})
    assert closes_at(spans, local(SUN, "20:00")) == "04:00"
    assert is_open(spans, local(MON, "03:45"))
    assert not is_open(spans, local(MON, "04:00"))


def test_open_all_day_every_day() -> None:
    spans = parse_week({day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    assert open_slots(spans) == list(range(WEEK // SLOT))
    for day in range(7):
        for hhmm in ("00:00", "12:00", "23:59"):
            assert is_open(spans, local(day, hhmm))
            assert closes_at(spans, local(day, hhmm)) is None


def test_open_around_the_clock_via_wrapping_span() -> None:
    week: dict[str, list[str]] = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
    spans = parse_week({**week, "sun": ["00:00-02:00", "02:00-24:00"]})
    assert closes_at(spans, local(SUN, "23:00")) is None
    assert closes_at(spans, local(WED, "04:00")) is None


def test_overlapping_spans_are_their_union() -> None:
    spans = parse_week({"mon": ["09:00-12:00", "11:00-14:00", "13:00-13:30"]})
    assert open_slots(spans) == list(range(9 * 4, 14 * 4))
    assert is_open(spans, local(MON, "11:30"))
    assert closes_at(spans, local(MON, "09:30")) == "14:00"
    assert not is_open(spans, local(MON, "14:00"))


def test_adjacent_spans_merge() -> None:
    spans = parse_week({"tue": ["09:00-12:00", "12:00-15:00"]})
    assert closes_at(spans, local(TUE, "10:00")) == "15:00"


def test_closes_at_gives_the_local_end() -> None:
    spans = parse_week({"wed": ["10:00-14:00", "17:30-21:45"]})
    assert closes_at(spans, local(WED, "10:00")) == "14:00"
    assert closes_at(spans, local(WED, "13:59")) == "14:00"
    assert closes_at(spans, local(WED, "18:00")) == "21:45"
    assert closes_at(spans, local(WED, "18:00").astimezone(UTC)) == "21:45"  # local, whatever the input zone


def test_closes_at_is_none_when_closed() -> None:
    spans = parse_week({"wed": ["10:00-14:00"]})
    assert closes_at(spans, local(WED, "14:00")) is None
    assert closes_at(spans, local(THU, "12:00")) is None
    assert closes_at([], local(THU, "12:00")) is None


def test_no_spans_is_never_open() -> None:
    assert open_slots([]) == []
    assert not is_open([], local(MON, "12:00"))


def test_closes_at_midnight_reads_00_00() -> None:
    spans = parse_week({"thu": ["20:00-24:00"]})
    assert closes_at(spans, local(THU, "21:00")) == "00:00"
    assert not is_open(spans, local(FRI, "00:00"))


# --- time zones ------------------------------------------------------------------------------


def test_utc_times_are_converted_to_shanghai() -> None:
    at = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # Saturday 00:30 in Shanghai
    assert at.astimezone(SHANGHAI).weekday() == SAT
    assert minute_of_week(at) == SAT * 1440 + 30
    assert slot_at(at) == (SAT * 1440 + 30) // SLOT
    assert is_open(parse_week({"sat": ["00:00-01:00"]}), at)
    assert not is_open(parse_week({"fri": ["16:00-17:00"]}), at)
    assert is_open(parse_week({"fri": ["22:00-01:00"]}), at)


def test_same_instant_in_any_zone_gives_the_same_slot() -> None:
    at = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    new_york = timezone(timedelta(hours=-5))
    assert slot_at(at) == slot_at(at.astimezone(SHANGHAI)) == slot_at(at.astimezone(new_york))


def test_slot_at_bounds() -> None:
    assert slot_at(local(MON, "00:00")) == 0
    assert slot_at(local(MON, "00:14")) == 0
    assert slot_at(local(MON, "00:15")) == 1
    assert slot_at(local(SUN, "23:59")) == WEEK // SLOT - 1


# --- property: is_open agrees with open_slots ------------------------------------------------

SCHEDULES: list[dict[str, list[str]]] = [
    {},
    {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"], "thu": ["09:00-18:00"],
     "fri": ["09:00-18:00"]},
    {"fri": ["18:00-02:00"], "sat": ["18:00-03:00"], "sun": ["22:00-03:00"]},
    {"mon": ["10:00-14:00", "17:00-21:30"], "tue": ["11:15-11:30"], "sat": ["00:00-24:00"],
     "sun": ["08:00-12:00", "10:00-16:00", "15:45-23:00"]},
    {"sun": ["23:45-00:15"], "mon": ["00:00-00:15"], "wed": ["23:45-23:30"]},
    {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    {"thu": ["06:30-24:00"], "fri": ["00:00-01:00", "12:00-12:15"], "sun": ["12:00-11:45"]},
]


def reference_open(spans: list[Span], minute: int) -> bool:
    """Independent oracle: open if the minute of the week falls inside any span, modulo the week."""
    return any((minute - (s.day * 1440 + s.start)) % WEEK < s.end - s.start for s in spans)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[f"schedule{i}" for i in range(len(SCHEDULES))])
def test_is_open_agrees_with_open_slots_for_every_quarter_hour(schedule: dict[str, list[str]]) -> None:
    spans = parse_week(schedule)
    slots = set(open_slots(spans))
    assert len(slots) == len(open_slots(spans))  # no duplicates
    assert all(0 <= s < WEEK // SLOT for s in slots)
    start = MONDAY.astimezone(UTC)  # give UTC instants, so the Shanghai conversion is exercised too
    for quarter in range(WEEK // SLOT):
        for offset in (0, 7, 14):
            at = start + timedelta(minutes=quarter * SLOT + offset)
            assert slot_at(at) == quarter
            expected = quarter in slots
            assert is_open(spans, at) is expected, (schedule, at.astimezone(SHANGHAI))
            assert reference_open(spans, quarter * SLOT + offset) is expected, (schedule, quarter)
            if not expected:
                assert closes_at(spans, at) is None
