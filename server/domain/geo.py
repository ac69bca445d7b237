"""Points, distances and the H3 cells that stand in for a 2dsphere index.

The embedded MongoDB has no $near, so each point stores the H3 cells that
contain it at a few resolutions (`geo_cells`, for real MongoDB and analytics)
and its latitude-band keys (`geo_bands`); a radius search reads growing boxes
by band-key ranges, nearest first, then measures exactly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import h3

EARTH_RADIUS_M = 6_371_008.8
# Coarse to fine: one of these covers any radius up to MAX_RADIUS_M with a few dozen cells.
RESOLUTIONS = (6, 7, 8, 9)
MAX_RADIUS_M = 20_000


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lng: float

    def __reduce__(self) -> tuple[type[Point], tuple[float, float]]:
        return Point, (self.lat, self.lng)  # cheaper to pickle than a slotted dataclass's default (see Span)

    def geojson(self) -> dict[str, object]:
        return {"type": "Point", "coordinates": [self.lng, self.lat]}


# "Near me" asks from a point of this grid (1/500 of a degree: about 220 m north-south, 205 m east-west in
# Shenzhen), not from the phone's own position: the phones of one street then send the same question, which
# the public cache answers once (server/api/cached_reads.py), and the exact position never leaves the phone.
# The PWA (pwa/geo.js `snap`) rounds to it and measures each shop's distance from the phone itself.
NEAR_GRID_PER_DEGREE = 500


def on_near_grid(lat: float, lng: float) -> bool:
    return all(round(v * NEAR_GRID_PER_DEGREE) / NEAR_GRID_PER_DEGREE == v for v in (lat, lng))


def valid_coordinates(lat: float, lng: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180


def haversine_m(a: Point, b: Point) -> float:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lng - a.lng)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def cells_of(point: Point) -> list[str]:
    return [h3.latlng_to_cell(point.lat, point.lng, res) for res in RESOLUTIONS]


# Latitude bands of these heights (metres) hold each point under a sortable "row|longitude" key, one
# indexed scalar per height: a box is then one index range per band it crosses.  Scalar ranges are what
# both the embedded server (which scans for any `$in` on an array) and MongoDB serve from an index.
BANDS_M = (100, 400, 1_600, 6_400, 25_600)
_M_PER_DEG = 111_320.0


def _band_key(row: int, lng: float) -> str:
    return f"{row:07d}|{lng + 180:010.6f}"


def _row(lat: float, band: int) -> int:
    return math.floor((lat + 90) * _M_PER_DEG / band)


def bands_of(point: Point) -> dict[str, str]:
    return {f"b{band}": _band_key(_row(point.lat, band), point.lng) for band in BANDS_M}


def box_ranges(center: Point, radius_m: float) -> tuple[str, list[tuple[str, str]]]:
    """(field, [(low, high)]): index ranges whose union holds every point within radius_m of center.

    The band is the smallest at least as tall as the radius, so a box crosses at most three of them."""
    band = next((b for b in BANDS_M if b >= radius_m), BANDS_M[-1])
    # 1 % wider than the sphere's arc: along a parallel a great circle reaches a little further in longitude
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.01
    dlng = min(180.0, dlat / max(math.cos(math.radians(min(89.0, abs(center.lat) + dlat))), 1e-6))
    low_lng, high_lng = max(-180.0, center.lng - dlng), min(180.0, center.lng + dlng)
    rows = range(_row(max(-90.0, center.lat - dlat), band), _row(min(90.0, center.lat + dlat), band) + 1)
    return f"geo_bands.b{band}", [(_band_key(r, low_lng), _band_key(r, high_lng)) for r in rows]


def point_in_polygon(point: Point, ring: list[list[float]]) -> bool:
    """Ray casting on a closed [lng, lat] ring (GeoJSON order)."""
    inside = False
    x, y = point.lng, point.lat
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def gcj02(point: Point) -> Point:
    """WGS-84 → GCJ-02, the shifted datum Chinese map apps (AMap) expect for display."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = point.lng - 105.0, point.lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
            + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    dlng = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
            + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = point.lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sqrt_magic) * math.pi)
    dlng = (dlng * 180.0) / (a / sqrt_magic * math.cos(rad) * math.pi)
    return Point(point.lat + dlat, point.lng + dlng)
