"""Chinese-aware search and "near me" through the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from server.domain.geo import Point, haversine_m
from server.domain.merchants import repository
from tests.conftest import RunningApp, gql


@pytest.mark.parametrize("text", ["华强北", "華強北", "huaqiangbei", "hqb", "HQB"])
async def test_huaqiangbei_in_any_script_finds_the_district_and_its_merchants(http: httpx.AsyncClient,
                                                                               text: str) -> None:
    body = await gql(http, '{ search(query: "%s", first: 20) { districts { slug } merchants { district { slug } } } }'
                     % text)
    result = body["data"]["search"]
    assert "huaqiangbei" in [d["slug"] for d in result["districts"]]
    in_hqb = [m["district"]["slug"] == "huaqiangbei" for m in result["merchants"]]
    assert len(in_hqb) >= 10
    # shops elsewhere may mention 华强北 in their description, but they rank after those named for it
    assert in_hqb[:5] == [True] * 5
    assert in_hqb == sorted(in_hqb, reverse=True)


async def test_two_words_find_phone_shops_of_huaqiang(http: httpx.AsyncClient) -> None:
    body = await gql(http, '{ merchants(filter: {query: "华强 手机"}, first: 50) { edges { node { name '
                           'district { slug } categories { slug } } } } }')
    edges = body["data"]["merchants"]["edges"]
    assert len(edges) >= 2
    for edge in edges[:2]:
        assert edge["node"]["district"]["slug"] == "huaqiangbei"
        assert "华强" in edge["node"]["name"] and "手机" in edge["node"]["name"]


async def test_products_by_name_and_pinyin(http: httpx.AsyncClient) -> None:
    for text in ["沙井蚝", "沙井蠔", "shajinghao", "sjh"]:
        body = await gql(http, '{ search(query: "%s") { products { slug } } }' % text)
        assert "shajing-oyster" in [p["slug"] for p in body["data"]["search"]["products"]], text


async def test_blank_search_returns_nothing(http: httpx.AsyncClient) -> None:
    body = await gql(http, '{ search(query: "   ") { merchants { slug } products { slug } districts { slug } } }')
    assert body["data"]["search"] == {"merchants": [], "products": [], "districts": []}


CENTERS = [(22.5445, 114.0855, 800), (22.5470, 114.1200, 1500), (22.5400, 114.0600, 3000), (22.5330, 114.1300, 250)]


@pytest.mark.parametrize(("lat", "lng", "radius"), CENTERS)
async def test_near_me_matches_a_brute_force_distance_sort(http: httpx.AsyncClient, db_client: Any,
                                                           app_server: RunningApp, lat: float, lng: float,
                                                           radius: float) -> None:
    center = Point(lat, lng)
    expected = []
    async for doc in db_client[app_server.db_name].merchants.find({}, {"location": 1}):
        mlng, mlat = doc["location"]["coordinates"]
        distance = haversine_m(center, Point(mlat, mlng))
        if distance <= radius:
            expected.append((round(distance, 1), doc["_id"]))
    expected.sort()
    got: list[tuple[float, str]] = []
    after = None
    query = """query($after: String) { merchants(filter: {near: {lat: %f, lng: %f, radiusMeters: %f}}, first: 10,
        after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { distanceMeters node { slug } } } }""" % (
        lat, lng, radius)
    while True:
        page = (await gql(http, query, {"after": after}))["data"]["merchants"]
        assert page["totalCount"] == len(expected)
        got += [(e["distanceMeters"], e["node"]["slug"]) for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert got == expected
    if radius >= 800:
        assert expected, "pick centres that have merchants around them"


async def test_a_filtered_search_past_its_read_cap_pages_on_with_the_same_results(
        http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search for a word every merchant holds, within one district, walks at most the read cap per page
    (lowered here so the shipped city exceeds it): a page may come back short, but hasNextPage and its
    endCursor carry on, and the pages together are the same merchants in the same order as one long page."""
    district = to_global("District", "prince-bay")
    query = """query($after: String, $first: Int) { merchants(filter: {query: "深圳", districtId: "%s"}, first: $first,
        after: $after) { pageInfo { hasNextPage endCursor } edges { node { slug } } } }""" % district
    whole = (await gql(http, query, {"after": None, "first": 50}))["data"]["merchants"]
    expected = [e["node"]["slug"] for e in whole["edges"]]
    assert len(expected) >= 8 and not whole["pageInfo"]["hasNextPage"]
    monkeypatch.setattr(repository, "WALK_CAP", 6, raising=False)
    got: list[str] = []
    after = None
    short = 0
    for _ in range(100):
        page = (await gql(http, query, {"after": after, "first": 3}))["data"]["merchants"]
        got += [e["node"]["slug"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        short += len(page["edges"]) < 3
        after = page["pageInfo"]["endCursor"]
        assert after is not None
    assert got == expected and short
