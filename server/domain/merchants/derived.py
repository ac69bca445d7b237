"""Fields MongoDB queries need, derived from what a merchant says about itself."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from server.domain.geo import Point, bands_of, cells_of
from server.domain.merchants.hours import SHANGHAI, SLOT, Span, open_slots, slot_at
from server.domain.search.terms import tiered_terms

EXCEPTION_MARK = "x"
SLOTS_PER_HOUR = 60 // SLOT  # open_keys entry "x2027-02-06": that date has its own hours, checked exactly


def derived_fields(name: dict[str, str], description: dict[str, str], address: dict[str, str],
                   categories: list[str], location: Point, spans: list[Span],
                   exceptions: dict[date, tuple[Span, ...]] | None = None) -> dict[str, Any]:
    exceptions = exceptions or {}
    dates = sorted(d.isoformat() for d in exceptions)
    # Search ranks a match in the name first, then in the name or address, then anywhere.
    name_terms, title_terms, search_terms = tiered_terms(
        [name.values(), address.values(), [*categories, *description.values()]])
    return {
        "hours_exceptions": [{"date": d.isoformat(), "spans": [s.label() for s in spans_]}
                             for d, spans_ in sorted(exceptions.items())],
        "exception_dates": dates,
        "location": location.geojson(), "geo_cells": cells_of(location), "geo_bands": bands_of(location),
        # One indexed array answers "open now" with a single $in: the hours of the week open at any
        # minute, plus a mark per exception date; candidates are then checked exactly.  Hours rather
        # than quarter-hours keep the array (read with every document) at most 168 long.
        "open_keys": [*sorted({slot // SLOTS_PER_HOUR for slot in open_slots(spans)}),
                      *(EXCEPTION_MARK + d for d in dates)],
        "search_terms": search_terms, "name_terms": name_terms, "title_terms": title_terms,
    }


def open_keys_at(at: datetime) -> list[int | str]:
    """What a merchant open at `at` holds in open_keys: the hour of the week, or an exception mark of
    the local day or the day before (a span past midnight)."""
    local_day = at.astimezone(SHANGHAI).date()
    marks = [EXCEPTION_MARK + (local_day + timedelta(days=d)).isoformat() for d in (-1, 0)]
    return [slot_at(at) // SLOTS_PER_HOUR, *marks]
