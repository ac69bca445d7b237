"""Reads cost what their page costs: counts from counters, search ranked name > address > anywhere,
openNow exact to the minute, and bad input answered with a code or a bounded page (issue 21)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from server.api.ids import to_global
from server.domain.merchants import counts, postings, postings_repository, service
from server.domain.merchants.hours import DAYS
from server.domain.search.terms import index_terms, query_terms
from tests.conftest import CommandCounter, RunningApp, gql
from tests.support import make_account

HOME_COUNTS = "{ districts { slug merchants { totalCount totalCountIsFloor } } }"


async def counted(http: httpx.AsyncClient, counter: CommandCounter, query: str,
                  variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    counter.targets.clear()
    counter.enabled = True
    try:
        body = await gql(http, query, variables)
    finally:
        counter.enabled = False
    return body, list(counter.targets)


async def test_district_totals_come_from_counters_in_one_read(http: httpx.AsyncClient, db_client: Any,
                                                              app_server: RunningApp,
                                                              command_counter: CommandCounter) -> None:
    body, targets = await counted(http, command_counter, HOME_COUNTS)
    db = db_client[app_server.db_name]
    districts = body["data"]["districts"]
    assert len(districts) >= 8
    for d in districts:
        exact = await db.merchants.count_documents({"district_id": d["slug"], "status": "published"})
        assert d["merchants"] == {"totalCount": exact, "totalCountIsFloor": False}, d["slug"]
    # districts, then every district's counter at once; no merchant is read
    assert targets == [("find", "districts"), ("find", "merchant_counts")], targets


async def test_counters_follow_writes(db_client: Any, app_server: RunningApp) -> None:
    db = db_client[app_server.db_name]
    before = await counts.by_keys(db, [counts.ALL])
    doc = {"_id": "x", "district_id": "huaqiangbei", "area_id": "hqb-seg-square", "categories": ["food", "food"],
           "status": "published"}
    await counts.apply(db, None, doc)
    moved = {**doc, "area_id": "hqb-pedestrian-street", "categories": ["electronics"]}
    await counts.apply(db, doc, moved)
    assert (await counts.by_keys(db, [counts.ALL]))[counts.ALL] == before[counts.ALL] + 1
    await counts.apply(db, moved, None)
    await counts.rebuild(db)  # and the loader's rebuild agrees with the documents again
    assert await counts.by_keys(db, [counts.ALL]) == before


async def test_search_ranks_name_then_address_then_anywhere(http: httpx.AsyncClient, db_client: Any,
                                                            app_server: RunningApp) -> None:
    body = await gql(http, """{ merchants(filter: {query: "华强北"}, first: 50) {
        edges { node { slug name address description } } } }""")
    nodes = [e["node"] for e in body["data"]["merchants"]["edges"]]
    assert nodes
    db = db_client[app_server.db_name]
    terms = set(query_terms("华强北"))
    tiers = []
    for node in nodes:
        doc = await db.merchants.find_one({"_id": node["slug"]}, {"name": 1, "address": 1})
        name_terms = set(index_terms(doc["name"].values()))
        title_terms = set(index_terms([*doc["name"].values(), *(doc.get("address") or {}).values()]))
        tiers.append(0 if terms <= name_terms else 1 if terms <= title_terms else 2)
    assert tiers == sorted(tiers)
    for tier in set(tiers):  # within a tier, by id: the cursor's order
        slugs = [n["slug"] for n, t in zip(nodes, tiers, strict=True) if t == tier]
        assert slugs == sorted(slugs)
    assert len(set(tiers)) >= 2, tiers


async def test_search_results_know_their_district(http: httpx.AsyncClient) -> None:
    body = await gql(http, '{ search(query: "手机") { merchants { name district { slug } } } }')
    merchants = body["data"]["search"]["merchants"]
    assert merchants and all(m["district"]["slug"] for m in merchants)


async def test_open_now_is_exact_to_the_minute(http: httpx.AsyncClient) -> None:
    district = to_global("District", "luohu-golden-triangle")
    body = await gql(http, """query($d: ID!) { merchants(filter: {districtId: $d, openNow: true}, first: 50) {
        totalCount edges { node { openNow } } } }""", {"d": district})
    page = body["data"]["merchants"]
    assert all(e["node"]["openNow"] for e in page["edges"])
    assert page["totalCount"] == len(page["edges"])
    everyone = await gql(http, """query($d: ID!) { merchants(filter: {districtId: $d}, first: 50) {
        edges { node { openNow } } } }""", {"d": district})
    assert len(page["edges"]) == sum(e["node"]["openNow"] for e in everyone["data"]["merchants"]["edges"])


async def test_bad_input_gets_a_code_or_a_bounded_page(http: httpx.AsyncClient,
                                                       command_counter: CommandCounter) -> None:
    body = await gql(http, "{ merchants(first: 51) { edges { cursor } } }")
    assert body["errors"][0]["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"
    body = await gql(http, "{ merchants(filter: {near: {lat: 22.54, lng: 114.08, radiusMeters: 20001}}) "
                           "{ edges { cursor } } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    for text in ("！？。、", "的", "a", "店"):
        body, targets = await counted(http, command_counter, """query($q: String!) {
            search(query: $q) { merchants { id } products { id } districts { id } }
            merchants(filter: {query: $q}, first: 20) { totalCount edges { cursor } } }""", {"q": text})
        assert "errors" not in body, body
        assert len(body["data"]["merchants"]["edges"]) <= 20
        assert body["data"]["merchants"]["totalCount"] <= 1000
        # at most one read per search tier and kind, and one count: never a read per match
        assert len(targets) <= 9, (text, targets)



async def test_a_page_of_merchants_reads_its_offers_by_id(http: httpx.AsyncClient, db_client: Any,
                                                         app_server: RunningApp,
                                                         command_counter: CommandCounter) -> None:
    """Two point reads whatever the city holds: the page's merchants' offer lists, then their active offers
    (a read by merchant_id would scan every offer on the embedded server)."""
    district = to_global("District", "huaqiangbei")
    body, targets = await counted(http, command_counter, """query($d: ID!) {
        merchants(filter: {districtId: $d}, first: 20) { edges { node { slug offers { slug } } } } }""",
                                  {"d": district})
    shown = {e["node"]["slug"]: [o["slug"] for o in e["node"]["offers"]]
             for e in body["data"]["merchants"]["edges"]}
    assert any(shown.values())
    assert [t for t in targets if "offer" in t[1]] == [("find", "offers_by_merchant"), ("find", "offers")], targets
    db = db_client[app_server.db_name]
    now = datetime.now(UTC)
    active = db.offers.find({"merchant_id": {"$in": list(shown)}, "status": "published",
                             "valid_from": {"$lte": now}, "valid_until": {"$gt": now}}).sort([("valid_until", 1),
                                                                                              ("_id", 1)])
    expected: dict[str, list[str]] = {m: [] for m in shown}
    async for doc in active:
        expected[doc["merchant_id"]].append(doc["_id"])
    assert shown == expected


async def test_a_page_of_merchants_reads_its_pictures_by_id(http: httpx.AsyncClient,
                                                          command_counter: CommandCounter) -> None:
    """Two point reads whatever the city holds: the owners' lists of uploads, then the pictures (a read by
    owner would scan every image on the embedded server)."""
    body, targets = await counted(http, command_counter, """query($d: ID!) {
        merchants(filter: {districtId: $d}, first: 20) { edges { node { images { url alt } } } } }""",
                                  {"d": to_global("District", "huaqiangbei")})
    edges = body["data"]["merchants"]["edges"]
    assert len(edges) == 20 and all(e["node"]["images"] for e in edges)
    assert [t for t in targets if "image" in t[1]] == [("find", "images_by_owner"), ("find", "images")], targets


async def _lists_holding(db: Any, key: str) -> set[str]:
    return {name for name, keys in (await postings_repository.every_list(db)).items() if key in keys}


async def test_back_office_writes_keep_the_postings(http: httpx.AsyncClient, db_client: Any,
                                                    app_server: RunningApp) -> None:
    """A shop listed and then edited in the back office is on exactly the search and open-now lists its
    document says, and search finds it at its new tier."""
    db = db_client[app_server.db_name]
    admin = (await make_account(db, "admin")).actor()
    token = "zq" + uuid.uuid4().hex[:6].translate(str.maketrans("0123456789", "ghijklmnop"))
    every_day = {d: ["09:00-21:00"] for d in DAYS}
    data = service.ProfileInput(name={"zh-CN": "测试数码店", "en": f"Test {token}"}, phone="+86 755 8300 0009",
                                categories=["mobile-phones"], price_level=2, hours=every_day, lat=22.5445,
                                lng=114.0855, area_id="hqb-seg-square")
    created = await service.create(db, admin, "huaqiangbei", data)
    doc = await db.merchants.find_one({"_id": created.id})
    assert not {"name_terms", "title_terms"} & set(doc)
    assert await _lists_holding(db, created.id) == postings.Entry.of(doc).lists()
    assert postings.search_list(0, token) in postings.Entry.of(doc).lists()

    async def found() -> list[str]:
        body = await gql(http, 'query($q: String!) { merchants(filter: {query: $q}, first: 5) { edges { cursor '
                               'node { slug } } } }', {"q": token})
        return [e["node"]["slug"] for e in body["data"]["merchants"]["edges"]]

    assert await found() == [created.id]
    # the token moves from the name to the address, and the shop closes on Sundays
    moved = replace(data, name={"zh-CN": "测试数码店"}, address={"en": f"Road {token}"},
                    hours={**every_day, "sun": []})
    await service.update_profile(db, admin, created.id, moved, created.version)
    doc = await db.merchants.find_one({"_id": created.id})
    assert await _lists_holding(db, created.id) == postings.Entry.of(doc).lists()
    assert postings.search_list(1, token) in postings.Entry.of(doc).lists()
    assert await found() == [created.id]
