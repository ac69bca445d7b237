"""The shopper read API over HTTP against the shipped content."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from server.api.ids import to_global
from server.domain.merchants.hours import is_open, parse_week
from tests.conftest import gql

HQB = to_global("District", "huaqiangbei")
LUOHU = to_global("District", "luohu-golden-triangle")


def names(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["name"] for e in connection["edges"]]


async def test_districts_with_areas_and_capacities(http: httpx.AsyncClient) -> None:
    body = await gql(http, "{ districts { id slug name center { lat lng } boundary areas { name capacity } } }")
    districts = {d["slug"]: d for d in body["data"]["districts"]}
    assert len(districts) >= 7
    luohu = districts["luohu-golden-triangle"]
    assert luohu["name"] == "罗湖金三角"
    assert {"东门", "国贸", "人民南"} <= {a["name"] for a in luohu["areas"]}
    assert all(a["capacity"] > 0 for d in districts.values() for a in d["areas"])
    assert 22.4 < luohu["center"]["lat"] < 22.7 and 113.7 < luohu["center"]["lng"] < 114.7
    assert luohu["boundary"][0] == luohu["boundary"][-1]


async def test_node_resolves_every_type_by_global_id(http: httpx.AsyncClient) -> None:
    body = await gql(http, """{ district(id: "%s") { id merchants(first: 1) { edges { node { id
        offers { id } products { id } area { id } } } } } }""" % HQB)
    district = body["data"]["district"]
    merchant = district["merchants"]["edges"][0]["node"]
    for global_id in [district["id"], merchant["id"], merchant["area"]["id"]]:
        node = await gql(http, '{ node(id: "%s") { id __typename } }' % global_id)
        assert node["data"]["node"]["id"] == global_id


async def test_pages_walk_every_merchant_once_and_total_count_agrees(http: httpx.AsyncClient) -> None:
    query = """query($after: String) { merchants(filter: {districtId: "%s"}, first: 7, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { slug } } } }""" % HQB
    seen: list[str] = []
    after = None
    total = None
    while True:
        page = (await gql(http, query, {"after": after}))["data"]["merchants"]
        total = page["totalCount"]
        seen += [e["node"]["slug"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == total
    assert total >= 20
    assert seen == sorted(seen)


async def test_open_now_agrees_with_the_hours_at_this_moment(http: httpx.AsyncClient) -> None:
    query = """{ all: merchants(filter: {districtId: "%s"}, first: 50) { edges { node { slug openNow
        hours { day spans } } } }
        open: merchants(filter: {districtId: "%s", openNow: true}, first: 50) { edges { node { slug } } } }""" % (
        LUOHU, LUOHU)
    body = await gql(http, query)
    now = datetime.now(UTC)
    expected = set()
    for edge in body["data"]["all"]["edges"]:
        node = edge["node"]
        spans = parse_week({d["day"]: d["spans"] for d in node["hours"]})
        assert node["openNow"] == is_open(spans, now), node["slug"]
        if node["openNow"]:
            expected.add(node["slug"])
    assert {e["node"]["slug"] for e in body["data"]["open"]["edges"]} == expected


async def test_category_and_active_offer_filters(http: httpx.AsyncClient) -> None:
    body = await gql(http, """{ merchants(filter: {districtId: "%s", categories: ["mobile-phones"]}, first: 50) {
        edges { node { categories { slug name } } } }
        withOffer: merchants(filter: {hasActiveOffer: true}, first: 50) { edges { node { slug offers { active } } } }
    }""" % HQB)
    phones = body["data"]["merchants"]["edges"]
    assert phones
    assert all("mobile-phones" in [c["slug"] for c in e["node"]["categories"]] for e in phones)
    assert all(c["name"] for e in phones for c in e["node"]["categories"])
    with_offer = body["data"]["withOffer"]["edges"]
    assert with_offer
    assert all(e["node"]["offers"] and all(o["active"] for o in e["node"]["offers"]) for e in with_offer)


async def test_merchant_page_has_hours_offers_and_products(http: httpx.AsyncClient) -> None:
    body = await gql(http, """{ products(first: 50) { edges { node { name soldBy { id } } } } }""")
    seller = body["data"]["products"]["edges"][0]["node"]["soldBy"][0]["id"]
    merchant = (await gql(http, """{ merchant(id: "%s") { name phone priceLevel address openNow closesAt
        hours { day spans } location { lat lng } district { name } area { name }
        offers { title kind validFrom validUntil couponCode } products { name priceMinFen priceMaxFen } } }"""
        % seller))["data"]["merchant"]
    assert merchant["name"] and merchant["phone"] and merchant["district"]["name"] and merchant["area"]["name"]
    assert [d["day"] for d in merchant["hours"]] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert merchant["products"]
    assert all(p["priceMinFen"] <= p["priceMaxFen"] for p in merchant["products"])


async def test_festivals_by_when(http: httpx.AsyncClient) -> None:
    body = await gql(http, """{ current: festivals(when: CURRENT) { name startsOn endsOn districts { slug }
        offers { title } } upcoming: festivals(when: UPCOMING) { startsOn } past: festivals(when: PAST) { endsOn } }""")
    today = datetime.now(UTC).date().isoformat()
    data = body["data"]
    assert data["upcoming"] and all(f["startsOn"] > today for f in data["upcoming"])
    assert [f["startsOn"] for f in data["upcoming"]] == sorted(f["startsOn"] for f in data["upcoming"])
    assert all(f["startsOn"] <= today <= f["endsOn"] for f in data["current"])
    assert all(f["endsOn"] < today for f in data["past"])
    assert any(f["offers"] for f in data["current"] + [])


async def test_offers_filter_and_ending_soon_order(http: httpx.AsyncClient) -> None:
    body = await gql(http, """{ offers(filter: {districtId: "%s"}, first: 50) { totalCount edges { node {
        validUntil active merchant { district { slug } } } } }
        soon: offers(filter: {endingWithinHours: 168}, first: 50) { edges { node { validUntil } } } }""" % HQB)
    edges = body["data"]["offers"]["edges"]
    assert edges and all(e["node"]["active"] for e in edges)
    assert all(e["node"]["merchant"]["district"]["slug"] == "huaqiangbei" for e in edges)
    ends = [e["node"]["validUntil"] for e in edges]
    assert ends == sorted(ends)
    soon = body["data"]["soon"]["edges"]
    assert soon, "the content should hold offers ending within a week"


async def test_products_filter_by_category_and_query(http: httpx.AsyncClient) -> None:
    body = await gql(http, """{ food: products(filter: {category: "food"}, first: 50) { totalCount
        edges { node { category } } }
        oyster: products(filter: {query: "shajinghao"}) { edges { node { slug name soldBy { name } } } } }""")
    assert body["data"]["food"]["totalCount"] > 0
    assert all(e["node"]["category"] == "food" for e in body["data"]["food"]["edges"])
    oyster = body["data"]["oyster"]["edges"]
    assert oyster and oyster[0]["node"]["name"] == "沙井蚝" and oyster[0]["node"]["soldBy"]
