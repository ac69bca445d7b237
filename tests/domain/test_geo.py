"""Unit tests for server.domain.geo: distances, H3 cells, latitude-band boxes, polygons, GCJ-02."""

from __future__ import annotations

import math
import random

import pytest

from server.domain.geo import (
    BANDS_M,
    EARTH_RADIUS_M,
    MAX_RADIUS_M,
    RESOLUTIONS,
    Point,
    bands_of,
    box_ranges,
    cells_of,
    gcj02,
    haversine_m,
    point_in_polygon,
    valid_coordinates,
)
from server.services.mongo import INDEXES

FUTIAN = Point(22.5431, 114.0579)


def law_of_cosines_m(a: Point, b: Point) -> float:
    """Independent great-circle distance (spherical law of cosines, same earth radius)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lng - a.lng)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return EARTH_RADIUS_M * math.acos(max(-1.0, min(1.0, c)))


def equirectangular_m(a: Point, b: Point) -> float:
    """Flat-earth approximation, accurate to well under 0.1 % over a few km."""
    mean_lat = math.radians((a.lat + b.lat) / 2)
    x = math.radians(b.lng - a.lng) * math.cos(mean_lat)
    y = math.radians(b.lat - a.lat)
    return EARTH_RADIUS_M * math.hypot(x, y)


def destination(origin: Point, bearing_deg: float, distance_m: float) -> Point:
    """The point at a distance and bearing from origin on the sphere."""
    d = distance_m / EARTH_RADIUS_M
    b = math.radians(bearing_deg)
    p1, l1 = math.radians(origin.lat), math.radians(origin.lng)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return Point(math.degrees(p2), math.degrees(l2))


# --- haversine -------------------------------------------------------------------------------


def test_haversine_about_one_km_in_shenzhen() -> None:
    a = FUTIAN
    b = Point(22.5501, 114.0641)  # ~1 km north-east
    distance = haversine_m(a, b)
    assert 900 < distance < 1100
    assert distance == pytest.approx(law_of_cosines_m(a, b), rel=0.005)
    assert distance == pytest.approx(equirectangular_m(a, b), rel=0.005)


def test_haversine_one_degree_of_latitude() -> None:
    # one degree along a meridian on a sphere of radius R is R·π/180 ≈ 111 195 m
    assert haversine_m(Point(22.0, 114.0), Point(23.0, 114.0)) == pytest.approx(111_195, rel=0.005)


def test_haversine_known_city_distance() -> None:
    # Shenzhen (Futian) to Hong Kong (Central): about 30 km as the crow flies.
    central = Point(22.2819, 114.1582)
    assert haversine_m(FUTIAN, central) == pytest.approx(law_of_cosines_m(FUTIAN, central), rel=0.005)
    assert 28_000 < haversine_m(FUTIAN, central) < 32_000


def test_haversine_is_symmetric_and_zero_on_itself() -> None:
    b = Point(22.53, 113.93)
    assert haversine_m(FUTIAN, FUTIAN) == 0
    assert haversine_m(FUTIAN, b) == pytest.approx(haversine_m(b, FUTIAN))


def test_destination_helper_agrees_with_haversine() -> None:
    for bearing in (0, 45, 90, 200, 333):
        assert haversine_m(FUTIAN, destination(FUTIAN, bearing, 1234.5)) == pytest.approx(1234.5, rel=1e-6)


def test_valid_coordinates() -> None:
    assert valid_coordinates(22.5, 114.0)
    assert not valid_coordinates(91, 0)
    assert not valid_coordinates(0, 181)
    assert not valid_coordinates(math.nan, 114.0)
    assert not valid_coordinates(22.5, math.inf)


# --- H3 cells --------------------------------------------------------------------------------


def test_cells_of_gives_one_cell_per_stored_resolution() -> None:
    cells = cells_of(FUTIAN)
    assert len(cells) == len(RESOLUTIONS) == len(set(cells))


# --- latitude bands ----------------------------------------------------------------------------


def _in_box(point: Point, center: Point, radius: float) -> bool:
    field, ranges = box_ranges(center, radius)
    key = bands_of(point)[field.removeprefix("geo_bands.")]
    return any(low <= key <= high for low, high in ranges)


def test_bands_match_the_indexes() -> None:
    indexed = [k for k, _ in INDEXES["merchants"] if k[0][0].startswith("geo_bands.")]
    assert [k[0][0] for k in indexed] == [f"geo_bands.b{b}" for b in BANDS_M]


def test_a_box_crosses_at_most_three_bands() -> None:
    for radius in (10, 50, 100, 400, 2_000, 5_000, MAX_RADIUS_M):
        assert 1 <= len(box_ranges(FUTIAN, radius)[1]) <= 3


def test_far_points_fall_outside_the_box() -> None:
    assert not _in_box(destination(FUTIAN, 0, 1_000), FUTIAN, 300)
    assert not _in_box(destination(FUTIAN, 90, 1_000), FUTIAN, 300)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_point_within_the_radius_is_in_the_box(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for _ in range(25):
        center = Point(rng.uniform(22.50, 22.60), rng.uniform(113.90, 114.30))
        radius = math.exp(rng.uniform(math.log(50), math.log(MAX_RADIUS_M)))
        points = [destination(center, rng.uniform(0, 360), radius * math.sqrt(rng.random())) for _ in range(8)]
        # and a few right at the edge, where a miss would show first
        points += [destination(center, rng.uniform(0, 360), radius * 0.999) for _ in range(4)]
        for point in points:
            assert haversine_m(center, point) <= radius
            assert _in_box(point, center, radius), (center, radius, point)
            checked += 1
    assert checked == 300


# --- polygons --------------------------------------------------------------------------------

SQUARE = [[114.0, 22.5], [114.1, 22.5], [114.1, 22.6], [114.0, 22.6], [114.0, 22.5]]
# A "U": the notch between the arms (114.03–114.07, above 22.53) is outside.
U_SHAPE = [
    [114.0, 22.5], [114.1, 22.5], [114.1, 22.6], [114.07, 22.6], [114.07, 22.53],
    [114.03, 22.53], [114.03, 22.6], [114.0, 22.6], [114.0, 22.5],
]


def test_point_in_polygon_inside_and_outside() -> None:
    assert point_in_polygon(Point(22.55, 114.05), SQUARE)
    assert not point_in_polygon(Point(22.65, 114.05), SQUARE)
    assert not point_in_polygon(Point(22.55, 114.15), SQUARE)
    assert not point_in_polygon(Point(22.45, 113.95), SQUARE)


def test_point_in_polygon_concave() -> None:
    assert point_in_polygon(Point(22.55, 114.015), U_SHAPE)  # left arm
    assert point_in_polygon(Point(22.55, 114.085), U_SHAPE)  # right arm
    assert point_in_polygon(Point(22.51, 114.05), U_SHAPE)  # base
    assert not point_in_polygon(Point(22.55, 114.05), U_SHAPE)  # the notch
    assert not point_in_polygon(Point(22.59, 114.05), U_SHAPE)


def test_point_in_polygon_ignores_winding_direction() -> None:
    reversed_square = list(reversed(SQUARE))
    assert point_in_polygon(Point(22.55, 114.05), reversed_square)
    assert not point_in_polygon(Point(22.65, 114.05), reversed_square)


# --- GCJ-02 ----------------------------------------------------------------------------------


def test_gcj02_shift_in_shenzhen() -> None:
    shifted = gcj02(FUTIAN)
    assert shifted.lng - FUTIAN.lng == pytest.approx(0.005, abs=0.001)
    assert shifted.lat - FUTIAN.lat == pytest.approx(-0.0027, abs=0.001)


def test_gcj02_shift_is_a_few_hundred_metres_across_shenzhen() -> None:
    for point in (Point(22.50, 113.90), Point(22.60, 114.30), Point(22.55, 114.10)):
        assert 300 < haversine_m(point, gcj02(point)) < 700
