"""Popular times, the next-hours summary for every shape of curve, and calmer alternatives: pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from server.domain.crowd import wording
from server.domain.crowd.alternatives import Place, calmer_alternatives
from server.domain.crowd.calendar import Calendar, crowd_day
from server.domain.crowd.forecast import HourPoint, typical
from server.domain.crowd.popular import NextHours, best_hours, day_hours, next_hours, popular_hours, usual_day
from server.domain.geo import Point

SATURDAY = date(2026, 12, 5)


def at(local_hour: int, day: date = SATURDAY) -> datetime:
    """A UTC instant at local (UTC+8) hour:07 of `day`; hours past 23 run into the next day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=local_hour - 8, minutes=7)


def ahead(now_hour: int, values: list[float]) -> list[HourPoint]:
    start = at(now_hour).replace(minute=0)
    return [HourPoint(start + timedelta(hours=k + 1), v, 0.5) for k, v in enumerate(values)]


def text(shape: NextHours, locale: str = "zh-CN") -> str:
    return wording.summary(shape, locale, SATURDAY, "weekend")


def test_late_evening_after_the_peak_says_it_is_getting_calmer() -> None:
    # the defect: 21:07 at 64 %, the busiest coming hour 22:00 at 27 % must not be called the busiest
    shape = next_hours(at(21), 64, ahead(21, [27, 14, 8, 5, 3, 2, 2, 3, 5, 9, 16, 26]))
    assert shape.kind == "emptying"
    assert text(shape) == "接下来会越来越空"
    assert text(shape, "en") == "Getting calmer from now on"


def test_afternoon_before_the_evening_peak_names_the_peak() -> None:
    shape = next_hours(at(15), 45, ahead(15, [50, 58, 70, 80, 76, 60, 40, 20, 10, 6, 4, 3]))
    assert (shape.kind, shape.percent) == ("peak", 80)
    assert text(shape) == "19:00 最挤（80%）"
    assert text(shape, "en") == "Busiest at 19:00 (80%)"
    assert text(shape, "zh-HK") == "19:00 最擠（80%）"


def test_a_lunch_crowd_that_thins_and_comes_back_names_the_calmest_hour() -> None:
    shape = next_hours(at(13), 60, ahead(13, [55, 40, 48, 58, 62, 60, 50, 30, 15, 8, 5, 3]))
    assert (shape.kind, shape.percent) == ("dip", 40)
    assert text(shape) == "15:00 最空（40%）"


def test_a_morning_rush_that_ebbs_before_a_lower_evening_is_a_dip_not_emptying() -> None:
    # 86 % at 06:00, then 12 % at 09:00, then 74 % at 19:00: "ever emptier" would be false
    shape = next_hours(at(6), 86, ahead(6, [60, 30, 12, 20, 35, 45, 50, 52, 55, 60, 66, 70, 74, 60, 40]))
    assert (shape.kind, shape.percent) == ("dip", 12)
    assert text(shape) == "09:00 最空（12%）"


def test_a_flat_curve_is_steady() -> None:
    shape = next_hours(at(11), 50, ahead(11, [52, 51, 49, 50, 53, 52, 50, 49, 51, 52, 50, 50]))
    assert shape.kind == "steady"
    assert text(shape, "en") == "About the same for the next hours"


def test_overnight_stays_quiet_rather_than_naming_a_tiny_peak() -> None:
    shape = next_hours(at(2), 2, ahead(2, [2, 2, 3, 4, 6, 9, 12, 14, 13, 12, 11, 10]))
    assert shape.kind == "quiet"
    assert text(shape) == "接下来都很空"


def test_early_morning_names_the_coming_peak_of_the_day() -> None:
    shape = next_hours(at(7), 4, ahead(7, [9, 16, 26, 34, 40, 40, 40, 41, 43, 47, 53, 57]))
    assert (shape.kind, shape.percent) == ("peak", 57)
    assert text(shape).startswith("19:00 最挤")


def test_the_summary_is_true_at_every_hour_of_a_usual_day() -> None:
    """Whatever the hour, a named peak is busier than now and a named dip calmer."""
    usual = [10, 6, 4, 3, 2, 2, 3, 4, 8, 16, 26, 34, 40, 40, 40, 41, 43, 47, 53, 57, 57, 50, 36, 20]
    for hour in range(24):
        coming = [usual[(hour + k) % 24] for k in range(1, 13)]
        points = ahead(hour, coming)
        shape = next_hours(at(hour), usual[hour], points)
        tonight = [p.percent for p in points if crowd_day(p.hour) == crowd_day(at(hour))]
        if shape.kind == "peak":
            assert shape.percent is not None and shape.percent > usual[hour], hour
        if shape.kind in ("dip",):
            assert shape.percent is not None and shape.percent < usual[hour], hour
        if shape.kind == "emptying":
            assert max(tonight) < usual[hour] + 5, hour
            lows = [min(tonight[: k + 1]) for k in range(len(tonight))]
            assert all(v < low + 10 for v, low in zip(tonight, lows, strict=True)), hour  # it never fills again
    assert next_hours(at(21), usual[21], ahead(21, [usual[(21 + k) % 24] for k in range(1, 13)])).kind == "emptying"
    assert next_hours(at(23), usual[23], ahead(23, [usual[(23 + k) % 24] for k in range(1, 13)])).kind == "emptying"
    # tomorrow's noon is no peak of tonight: the shopping day ends at 05:00
    assert next_hours(at(4), 3, ahead(4, [2, 3, 4, 8, 16, 26, 34, 40, 40, 40, 41, 43])).kind == "quiet"
    assert next_hours(at(4), 18, ahead(4, [12, 9, 8, 16, 26, 34, 40, 40, 40, 41, 43, 47])).kind == "emptying"


def test_busier_than_a_usual_saturday() -> None:
    shape = next_hours(at(19), 80, ahead(19, [70, 60, 40, 20, 10, 5, 3, 2, 2, 2, 3, 4]), usual_now=55)
    assert shape.versus_usual == "busier"
    assert text(shape) == "接下来会越来越空，比平时周六挤"
    assert text(shape, "en") == "Getting calmer from now on; busier than a usual Saturday"
    calm = next_hours(at(19), 20, ahead(19, [18, 15, 10, 6, 4, 3, 2, 2, 2, 2, 3, 4]), usual_now=55)
    assert calm.versus_usual == "quieter"
    assert wording.summary(calm, "zh-CN", SATURDAY, "holiday").endswith("比平时假日空")
    assert next_hours(at(19), 58, ahead(19, [57] * 12), usual_now=55).versus_usual is None


def test_popular_hours_mark_the_live_hour_and_best_hours_skip_what_has_begun() -> None:
    usual = [10.0, 6, 4, 3, 2, 2, 3, 4, 8, 16, 26, 34, 40, 40, 40, 41, 43, 47, 53, 57, 57, 50, 36, 20]
    morning = at(9)
    hours = popular_hours(SATURDAY, usual, morning, 12.0)
    assert [h.hour for h in hours] == list(range(24))
    assert [h.live for h in hours].index(True) == 9 and hours[9].percent == 12.0 and hours[9].typical == 16
    assert best_hours(hours, morning) == (10, 12)
    afternoon = at(14)
    assert best_hours(hours, afternoon) == (14, 16)  # 10:00–12:00 is gone, 14:00 is running
    assert best_hours(hours, at(21)) is None
    assert best_hours(popular_hours(SATURDAY, usual, at(9, SATURDAY - timedelta(days=1)), None), morning) == (10, 12)
    shape = usual_day(hours)
    assert shape.kind == "peak" and shape.percent == 57
    assert wording.summary(shape, "zh-CN", SATURDAY, "weekend", upcoming=True) == "通常 19:00 最挤（57%）"


def test_day_hours_are_local_midnight_to_23_00() -> None:
    hours = day_hours(SATURDAY)
    assert hours[0] == datetime(2026, 12, 4, 16, tzinfo=UTC) and hours[23] == datetime(2026, 12, 5, 15, tzinfo=UTC)


def test_typical_days_follow_history_and_festivals() -> None:
    calendar = Calendar(festival_days=frozenset({SATURDAY}), holidays=frozenset())
    now = at(9, SATURDAY - timedelta(days=3))
    history = {}
    for week in range(1, 7):  # six past Saturdays: 30 % all day
        for t in day_hours(SATURDAY - timedelta(weeks=week)):
            history[t] = 30.0
    plain = typical(history, now, day_hours(SATURDAY), Calendar(frozenset(), frozenset()))
    festive = typical(history, now, day_hours(SATURDAY), calendar)
    assert plain[12] == pytest.approx(30.0)
    assert festive[12] == pytest.approx(30.0 * 1.3)  # the prior festival factor, nothing learned yet


def place(area_id: str, lat: float, percent: float, level: str, cats: set[str], district: str = "d1",
          known: bool = True) -> Place:
    return Place(area_id, district, Point(lat, 114.1), percent, level, known, frozenset(cats))


def test_calmer_alternatives_are_calmer_close_and_share_an_errand() -> None:
    origin = place("dongmen", 22.545, 85, "BUSY", {"food", "fashion"})
    found = calmer_alternatives(origin, [
        origin,
        place("near-quiet", 22.548, 25, "QUIET", {"food"}),  # ~430 m walk
        place("far-quiet", 22.58, 10, "QUIET", {"food"}),  # ~5 km: too far
        place("near-busy", 22.546, 80, "BUSY", {"food"}),  # not calmer
        place("near-moderate", 22.55, 55, "MODERATE", {"food", "fashion"}, district="d2"),
        place("no-shops-alike", 22.546, 20, "QUIET", {"gold"}),
        place("no-reading", 22.546, 0, "QUIET", {"food"}, known=False),
    ], 5, {"food": 10, "fashion": 3})
    assert [a.place.area_id for a in found] == ["near-quiet", "near-moderate"]
    best = found[0]
    assert best.shared == ("food",) and 400 < best.walking_m < 500 and best.minutes == 6
    assert found[1].shared == ("food", "fashion")
    line = wording.explanation("zh-CN", best.minutes, "QUIET", 25, 85, ["美食"])
    assert line == "步行约 6 分钟，现在人少（25%，这里 85%），也有美食"
    english = wording.explanation("en", 6, "QUIET", 25, 85, ["Food"])
    assert english == "6 min walk; quiet now (25% vs 85% here); also Food"
    assert calmer_alternatives(origin, [place("near-quiet", 22.548, 25, "QUIET", {"food"})], 0) == []
