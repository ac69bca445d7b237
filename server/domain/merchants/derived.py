"""Fields MongoDB queries need, derived from what a merchant says about itself."""

from __future__ import annotations

from datetime import date
from typing import Any

from server.domain.geo import Point, cells_of
from server.domain.merchants.hours import Span, open_slots
from server.domain.search.terms import index_terms


def derived_fields(name: dict[str, str], description: dict[str, str], address: dict[str, str],
                   categories: list[str], location: Point, spans: list[Span],
                   exceptions: dict[date, tuple[Span, ...]] | None = None) -> dict[str, Any]:
    exceptions = exceptions or {}
    return {
        "hours_exceptions": [{"date": d.isoformat(), "spans": [s.label() for s in spans_]}
                             for d, spans_ in sorted(exceptions.items())],
        "exception_dates": sorted(d.isoformat() for d in exceptions),
        "location": location.geojson(), "geo_cells": cells_of(location), "open_slots": open_slots(spans),
        "search_terms": index_terms([*name.values(), *address.values(), *categories, *description.values()]),
        # what a match in the name or address looks like: such matches rank first
        "title_terms": index_terms([*name.values(), *address.values()]),
    }
