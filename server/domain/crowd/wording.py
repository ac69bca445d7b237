"""The one-line crowd summaries and calmer-place explanations, in zh-CN, zh-HK and en.

They are built on the server so that every client (the PWA, integrations) says the same true thing.
"""

from __future__ import annotations

from datetime import date, datetime

from server.domain.crowd.calendar import local_time
from server.domain.crowd.popular import NextHours

_TEXT: dict[str, dict[str, object]] = {
    "zh-CN": {
        "peak": "{time} 最挤（{pct}%）", "usual_peak": "通常 {time} 最挤（{pct}%）", "dip": "{time} 最空（{pct}%）",
        "emptying": "接下来会越来越空", "quiet": "接下来都很空", "usual_quiet": "通常人少", "steady": "接下来人流平稳",
        "busier": "比平时{day}挤", "quieter": "比平时{day}空", "join": "，", "holiday": "假日", "festival": "活动日",
        "days": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
        "walk": "步行约 {min} 分钟", "now": "现在{level}（{pct}%，这里 {here}%）", "also": "也有{cats}", "sep": "、",
        "QUIET": "人少", "MODERATE": "适中", "BUSY": "较挤", "PACKED": "拥挤",
    },
    "zh-HK": {
        "peak": "{time} 最擠（{pct}%）", "usual_peak": "通常 {time} 最擠（{pct}%）", "dip": "{time} 最少人（{pct}%）",
        "emptying": "接落嚟會越來越少人", "quiet": "接落嚟都好少人", "usual_quiet": "通常人少",
        "steady": "接落嚟人流平穩",
        "busier": "比平時{day}擠", "quieter": "比平時{day}少人", "join": "，", "holiday": "假日", "festival": "活動日",
        "days": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
        "walk": "步行約 {min} 分鐘", "now": "而家{level}（{pct}%，呢度 {here}%）", "also": "都有{cats}", "sep": "、",
        "QUIET": "人少", "MODERATE": "適中", "BUSY": "較擠", "PACKED": "擠迫",
    },
    "en": {
        "peak": "Busiest at {time} ({pct}%)", "usual_peak": "Usually busiest at {time} ({pct}%)",
        "dip": "Calmest at {time} ({pct}%)", "emptying": "Getting calmer from now on",
        "quiet": "Quiet for the next hours", "usual_quiet": "Usually quiet",
        "steady": "About the same for the next hours",
        "busier": "busier than a usual {day}", "quieter": "quieter than a usual {day}", "join": "; ",
        "holiday": "holiday", "festival": "festival day",
        "days": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "walk": "{min} min walk", "now": "{level} now ({pct}% vs {here}% here)", "also": "also {cats}", "sep": ", ",
        "QUIET": "quiet", "MODERATE": "moderate", "BUSY": "busy", "PACKED": "packed",
    },
}


def _words(locale: str) -> dict[str, object]:
    return _TEXT.get(locale) or _TEXT["zh-CN"]


def _s(words: dict[str, object], key: str) -> str:
    value = words[key]
    assert isinstance(value, str)
    return value


def hhmm(at: datetime) -> str:
    return local_time(at).strftime("%H:00")


def summary(shape: NextHours, locale: str, day: date, day_kind: str, upcoming: bool = False) -> str:
    """One line: "19:00 最挤（80%），比平时周六挤"; `upcoming` words a later day as what usually happens."""
    w = _words(locale)
    kind = shape.kind
    if upcoming and kind in ("peak", "quiet"):
        kind = f"usual_{kind}"
    text = _s(w, kind).format(time=hhmm(shape.at) if shape.at else "", pct=shape.percent)
    if shape.versus_usual:
        days = w["days"]
        assert isinstance(days, tuple)
        name = _s(w, day_kind) if day_kind in ("holiday", "festival") else days[day.weekday()]
        comparison = _s(w, shape.versus_usual).format(day=name)
        text = f"{text}{_s(w, 'join')}{comparison}"
    if locale == "en":
        text = text[:1].upper() + text[1:]
    return text


def explanation(locale: str, minutes: int, level: str, percent: float, here: float, categories: list[str]) -> str:
    """"步行约 8 分钟，现在人少（23%，这里 85%），也有美食、茶"."""
    w = _words(locale)
    parts = [_s(w, "walk").format(min=minutes),
             _s(w, "now").format(level=_s(w, level), pct=round(percent), here=round(here))]
    if categories:
        parts.append(_s(w, "also").format(cats=_s(w, "sep").join(categories)))
    text = _s(w, "join").join(parts)
    return text[:1].upper() + text[1:] if locale == "en" else text
