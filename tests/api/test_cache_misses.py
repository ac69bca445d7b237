"""What a public-cache miss costs and shares: near me after an offer edit reads its shops by id (the order is
kept while no merchant is written), and the requests of one process that miss the same answer together run
it once. Each test runs its own app on its own database (tests/fixtures/content)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from server.domain.accounts import service as accounts
from server.domain.geo import Point, haversine_m
from server.plumbing.persisted import allow_list
from server.settings import ROOT
from tests.conftest import CommandCounter, RunningApp, gql, unique_db
from tests.ops.servers import serve
from tests.support import make_account

DISTRICT, SHOP = "huaqiangbei", "hqb-phone-city"  # tests/fixtures/content
HASHES = {text.split("(")[0].split()[1]: sha for sha, text in allow_list().items()}
OFFER_FIELDS = "offer { id version status title } errors { field code message }"


def persisted(name: str, **variables: Any) -> dict[str, str]:
    return {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": HASHES[name]}}),
            "variables": json.dumps(variables)}


@pytest.fixture
async def settings_here(app_server: RunningApp, tmp_path: Path) -> Any:
    return replace(app_server.settings, mongodb_db=unique_db("miss"), var_dir=tmp_path,
                   content_dir=ROOT / "tests" / "fixtures" / "content")


async def _shop_token(db: Any) -> dict[str, str]:
    merchant = await make_account(db, "merchant", merchant_ids=[SHOP])
    token = await accounts.create_token(db, merchant.actor(), "pos", ["offers", "profile"])
    return {"authorization": f"Bearer {token.secret}"}


def _listed(answer: httpx.Response) -> list[tuple[str, float]]:
    return [(e["node"]["id"], e["distanceMeters"]) for e in answer.json()["data"]["merchants"]["edges"]]


async def test_near_me_after_an_offer_edit_reads_its_shops_by_id_and_a_merchant_write_ranks_again(
        settings_here: Any, db_client: Any) -> None:
    counter = CommandCounter()
    db = db_client[settings_here.mongodb_db]
    async with serve(settings_here, mongo_listeners=[counter]) as url, \
            httpx.AsyncClient(base_url=url, timeout=30) as http:
        token = await _shop_token(db)
        doc = await db.merchants.find_one({"_id": SHOP})
        lng, lat = doc["location"]["coordinates"]
        grid = {"lat": round(lat * 500) / 500, "lng": round(lng * 500) / 500, "radiusMeters": 5000}
        near = persisted("Merchants", filter={"near": grid}, first=20, locale="zh-CN")
        first = await http.get("/graphql", params=near)
        assert first.headers["x-cache"] == "miss" and to_global("Merchant", SHOP) in dict(_listed(first))
        made = (await gql(http, "mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) "
                          "{ %s } }" % OFFER_FIELDS, {"m": to_global("Merchant", SHOP), "i": {
                              "title": {"zhCN": "附近"}, "kind": "PERCENT_OFF", "percentOff": 10,
                              "validFrom": "2020-01-01T00:00:00+00:00", "validUntil": "2099-01-01T00:00:00+00:00"}},
                          token))["data"]["createOffer"]["offer"]
        await gql(http, 'mutation { publishOffer(id: "%s", version: 1) { %s } }' % (made["id"], OFFER_FIELDS),
                  headers=token)
        counter.commands.clear()
        counter.targets.clear()
        counter.enabled = True
        edited = await http.get("/graphql", params=near)
        counter.enabled = False
        assert edited.headers["x-cache"] == "miss"
        assert made["id"] in {o["id"] for e in edited.json()["data"]["merchants"]["edges"] for o in e["node"]["offers"]}
        assert _listed(edited) == _listed(first)
        # the shops by id in one read, no box around the point, no count
        assert [t for t in counter.targets if t[1] == "merchants"] == [("find", "merchants")], counter.targets
        # a merchant write (the shop moves ~110 m within its district) outdates the order as well as the answer
        profile = {"name": {"zhCN": doc["name"]["zh-CN"]}, "phone": doc.get("phone") or "0755-1",
                   "categories": doc["categories"], "priceLevel": doc["price_level"], "lat": lat + 0.001, "lng": lng,
                   "areaId": to_global("Area", doc["area_id"]),
                   "hours": [{"day": d, "spans": s} for d, s in doc["hours"].items()]}
        moved = await gql(http, "mutation($id: ID!, $v: Int!, $i: MerchantProfileInput!) { updateMerchantProfile("
                          "id: $id, version: $v, input: $i) { errors { code message } } }",
                          {"id": to_global("Merchant", SHOP), "v": doc.get("version", 0), "i": profile}, token)
        assert moved["data"]["updateMerchantProfile"]["errors"] == [], moved
        after = await http.get("/graphql", params=near)
        assert after.headers["x-cache"] == "miss"
        shop = to_global("Merchant", SHOP)
        before, now = dict(_listed(first))[shop], dict(_listed(after))[shop]
        assert abs(now - before) > 50, (before, now)
        node = next(e["node"] for e in after.json()["data"]["merchants"]["edges"] if e["node"]["id"] == shop)
        assert node["location"]["lat"] == pytest.approx(lat + 0.001)  # the shop itself is read again too
        assert [d for _, d in _listed(after)] == sorted(d for _, d in _listed(after))


async def test_a_shop_edited_through_one_process_shows_in_the_other_processes_lists(
        settings_here: Any, db_client: Any) -> None:
    """Merchants and near-me orders kept in each process's memo: a profile edit (name and place) through either
    process shows on the next near-me, search-list and Home read through the other, each time."""
    db = db_client[settings_here.mongodb_db]
    async with serve(settings_here) as url_a, serve(settings_here, load_content=False) as url_b, \
            httpx.AsyncClient(base_url=url_a, timeout=30) as a, httpx.AsyncClient(base_url=url_b, timeout=30) as b:
        token = await _shop_token(db)
        doc = await db.merchants.find_one({"_id": SHOP})
        lng, lat = doc["location"]["coordinates"]
        grid = {"lat": round(lat * 500) / 500, "lng": round(lng * 500) / 500, "radiusMeters": 5000}
        lists = {"near": persisted("Merchants", filter={"near": grid}, first=20, locale="en"),
                 "search": persisted("SearchAll", query="手机", first=20, locale="en")}
        shop, version = to_global("Merchant", SHOP), doc.get("version", 0)
        # an offer ending soon: Home lists it with its shop's name (read through the loader, so from the memo)
        ends = (datetime.now(UTC) + timedelta(hours=30)).isoformat()
        made = (await gql(a, "mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) { %s } }"
                          % OFFER_FIELDS, {"m": shop, "i": {"title": {"zhCN": "快结束"}, "kind": "PERCENT_OFF",
                                                          "percentOff": 10, "validFrom": "2020-01-01T00:00:00+00:00",
                                                          "validUntil": ends}}, token))["data"]["createOffer"]["offer"]
        await gql(a, 'mutation { publishOffer(id: "%s", version: 1) { %s } }' % (made["id"], OFFER_FIELDS),
                  headers=token)
        home = persisted("Home", locale="en")

        async def home_shows(http: httpx.AsyncClient) -> str:
            edges = (await http.get("/graphql", params=home)).json()["data"]["offers"]["edges"]
            return str(next(e["node"]["merchant"]["name"] for e in edges if e["node"]["id"] == made["id"]))

        async def shown(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
            edges = (await http.get("/graphql", params=lists[name])).json()["data"]["merchants"]["edges"]
            return next(e for e in edges if e["node"]["id"] == shop)

        for n, (writer, reader) in enumerate([(a, b), (b, a), (a, b), (b, a)]):
            for name in lists:  # the reader's memo holds the shop as it is now
                await shown(reader, name)
            await home_shows(reader)
            where = lat + 0.0005 * (n + 1)
            profile = {"name": {"zhCN": doc["name"]["zh-CN"], "en": f"Renamed {n}"}, "phone": doc.get("phone") or "1",
                       "categories": doc["categories"], "priceLevel": doc["price_level"], "lat": where, "lng": lng,
                       "areaId": to_global("Area", doc["area_id"]),
                       "hours": [{"day": d, "spans": s} for d, s in doc["hours"].items()]}
            saved = (await gql(writer, "mutation($id: ID!, $v: Int!, $i: MerchantProfileInput!) { "
                               "updateMerchantProfile(id: $id, version: $v, input: $i) { merchant { version } "
                               "errors { code message } } }", {"id": shop, "v": version, "i": profile},
                               token))["data"]["updateMerchantProfile"]
            assert saved["errors"] == [], saved
            version = saved["merchant"]["version"]
            for name in lists:
                edge = await shown(reader, name)
                assert edge["node"]["name"] == f"Renamed {n}", (n, name)
            assert await home_shows(reader) == f"Renamed {n}", n
            near = await shown(reader, "near")
            assert near["node"]["location"]["lat"] == pytest.approx(where), n
            assert near["distanceMeters"] == pytest.approx(
                haversine_m(Point(grid["lat"], grid["lng"]), Point(where, lng)), abs=0.1), n


async def test_requests_that_miss_the_same_answer_together_run_it_once_and_all_see_the_write(
        settings_here: Any, db_client: Any) -> None:
    """After an edit outdates the shop's page, a crowd of phones asking for it at once costs one execution, and
    every one of them gets the edited page: also when the process is so busy that it reads Redis's answers late
    (the loop stalled by CPU work in it, as under a backlog), after the first of them stored the page. Which
    path a phone takes depends on timing: most wait for the first one ("computing"); with the stalls, some read
    their lookup's reply after it finished and look up again (the code before that change ran the page twice
    in 4 of 4 runs); none may run it again."""
    counter = CommandCounter()
    db = db_client[settings_here.mongodb_db]
    page = persisted("MerchantPage", id=to_global("Merchant", SHOP), locale="zh-CN")
    async with serve(settings_here, mongo_listeners=[counter]) as url, \
            httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=200)) as http:
        token = await _shop_token(db)
        for round_ in range(8):
            assert (await http.get("/graphql", params=page)).status_code == 200
            title = f"一起-{round_}"
            made = (await gql(http, "mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) "
                              "{ %s } }" % OFFER_FIELDS, {"m": to_global("Merchant", SHOP), "i": {
                                  "title": {"zhCN": title}, "kind": "PERCENT_OFF", "percentOff": 10,
                                  "validFrom": "2020-01-01T00:00:00+00:00",
                                  "validUntil": "2099-01-01T00:00:00+00:00"}}, token))["data"]["createOffer"]["offer"]
            await gql(http, 'mutation { publishOffer(id: "%s", version: 1) { %s } }' % (made["id"], OFFER_FIELDS),
                      headers=token)
            counter.targets.clear()
            counter.enabled = True
            stalls = asyncio.create_task(_stall_the_loop())
            asking = []
            for _ in range(60):  # arriving over the first one's execution, as phones do
                asking.append(asyncio.create_task(http.get("/graphql", params=page)))
                await asyncio.sleep(0.0005)
            answers = await asyncio.gather(*asking)
            stalls.cancel()
            counter.enabled = False
            assert all(title in {o["title"] for o in a.json()["data"]["merchant"]["offers"]} for a in answers)
            executions = sum(1 for command, collection in counter.targets if collection == "merchants")
            assert (executions, [a.headers["x-cache"] for a in answers].count("miss")) == (1, 1), round_


async def _stall_the_loop() -> None:
    """CPU work on the event loop, as a busy web process has: every timer and reply is handled late."""
    while True:
        time.sleep(0.001)
        await asyncio.sleep(0)
