"""Field checks for content records; every failure names file, record and field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from server.domain.forms import SLUG
from server.domain.geo import valid_coordinates
from server.domain.i18n import LOCALES


class ContentError(ValueError):
    def __init__(self, file: str, record: str, field: str, message: str) -> None:
        super().__init__(f"{file}: record {record}: field {field}: {message}")
        self.file, self.record, self.field, self.message = file, record, field, message

    def __reduce__(self) -> tuple[type[ContentError], tuple[str, str, str, str]]:
        # raised in a worker process that reads a merchant file (content/files.py): rebuilt whole in ours
        return ContentError, (self.file, self.record, self.field, self.message)


@dataclass(slots=True)
class Record:
    """One record being checked: knows where it came from, for error messages."""

    file: str
    label: str
    data: dict[str, Any]

    def __reduce__(self) -> tuple[type[Record], tuple[str, str, dict[str, Any]]]:
        # records come back from the reading worker processes (content/files.py) by the ten thousand: a slotted
        # dataclass's own pickling looks its fields up for each one, several times slower
        return Record, (self.file, self.label, self.data)

    def fail(self, field: str, message: str) -> ContentError:
        return ContentError(self.file, self.label, field, message)

    def raw(self, field: str, *, required: bool = True) -> Any:
        if field not in self.data or self.data[field] is None:
            if required:
                raise self.fail(field, "is required")
            return None
        return self.data[field]

    def slug(self, field: str = "id", *, required: bool = True) -> str | None:
        value = self.raw(field, required=required)
        if value is None:
            return None
        if not isinstance(value, str) or not SLUG.match(value):
            raise self.fail(field, f"{value!r} is not a lowercase slug ([a-z0-9-])")
        return value

    def text(self, field: str, *, required: bool = True, max_len: int = 200) -> str | None:
        value = self.raw(field, required=required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > max_len:
            raise self.fail(field, f"must be a non-empty string of at most {max_len} characters")
        return value.strip()

    def localized(self, field: str, *, required: bool = True, max_len: int = 2000) -> dict[str, str]:
        value = self.raw(field, required=required)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(field, "must map locales (zh-CN, zh-HK, en) to text")
        unknown = set(value) - set(LOCALES)
        if unknown:
            raise self.fail(f"{field}.{sorted(unknown)[0]}", "unknown locale; use zh-CN, zh-HK or en")
        if "zh-CN" not in value:
            raise self.fail(f"{field}.zh-CN", "is required")
        for locale, text in value.items():
            if not isinstance(text, str) or not text.strip() or len(text) > max_len:
                raise self.fail(f"{field}.{locale}", f"must be non-empty text of at most {max_len} characters")
        return {k: v.strip() for k, v in value.items()}

    def integer(self, field: str, low: int, high: int, *, required: bool = True) -> int | None:
        value = self.raw(field, required=required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(field, f"must be a whole number from {low} to {high}")
        return value

    def point(self, field: str) -> tuple[float, float]:
        value = self.raw(field)
        if not isinstance(value, dict) or set(value) != {"lat", "lng"}:
            raise self.fail(field, "must be {lat: …, lng: …}")
        lat, lng = value["lat"], value["lng"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lng)) or \
                not valid_coordinates(float(lat), float(lng)):
            raise self.fail(field, "lat must be within ±90 and lng within ±180")
        return float(lat), float(lng)

    def choice(self, field: str, choices: tuple[str, ...]) -> str:
        value = self.raw(field)
        if value not in choices:
            raise self.fail(field, f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    def slugs(self, field: str, *, required: bool = True, max_items: int = 50) -> list[str]:
        value = self.raw(field, required=required)
        if value is None:
            return []
        if not isinstance(value, list) or not value or len(value) > max_items:
            raise self.fail(field, f"must be a list of 1 to {max_items} ids")
        for item in value:
            if not isinstance(item, str) or not SLUG.match(item):
                raise self.fail(field, f"{item!r} is not a lowercase slug")
        return list(value)

    def day(self, field: str) -> date:
        value = self.raw(field)
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                pass
        if not isinstance(value, date) or isinstance(value, datetime):
            raise self.fail(field, "must be a date YYYY-MM-DD")
        return value

    def moment(self, field: str) -> datetime:
        value = self.raw(field)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                pass
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise self.fail(field, "must be a date-time with a UTC offset, e.g. 2026-12-01T10:00:00+08:00")
        return value
