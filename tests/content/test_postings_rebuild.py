"""A content load rebuilds the search and open-now lists without a reader ever seeing them empty, leaves them
be when no merchant changed, and two loads at once both finish with the same lists (issue 21, review)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from server.content.loader import load_content, parse_content, record_digest, replace_missed
from server.domain.merchants import postings, postings_repository, service
from server.domain.merchants import repository as merchants
from server.domain.merchants.hours import DAYS
from server.settings import ROOT
from tests.conftest import RunningApp, gql, unique_db
from tests.content.test_loader import edit
from tests.ops.servers import serve
from tests.support import make_account

SEARCH = 'query($q: String!) { merchants(filter: {query: $q}, first: 50) { edges { node { slug } } } }'
OPEN_NOW = """query($d: ID!) { merchants(filter: {districtId: $d, openNow: true}, first: 50) {
    edges { node { slug } } } }"""
DISTRICT = to_global("District", "huaqiangbei")
NEW_LIST = postings.search_list(2, "sorting")
# a bucket no list hashes to: it stays only while nobody rewrites the lists
SENTINEL = {"_id": "b|sentinel", "lists": ""}


@pytest.fixture
def city(tmp_path: Path) -> Path:
    """The shipped content, to be edited."""
    target = tmp_path / "content"
    shutil.copytree(ROOT / "content", target)
    return target


def describe(city: Path, words: str) -> None:
    """A huaqiangbei merchant's description gains words: its lists change, the searches below do not."""
    def change(data: dict[str, Any]) -> None:
        data["merchants"][1]["description"]["en"] += f" {words}"
    edit(city / "merchants" / "huaqiangbei.yaml", change)


async def slugs(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> list[str]:
    # a POST: never answered from the public cache, so each answer is read from the lists as they are
    body = await gql(http, query, variables)
    assert "errors" not in body, body
    return [e["node"]["slug"] for e in body["data"]["merchants"]["edges"]]


async def test_a_search_during_a_load_finds_every_merchant(db_client: Any, app_server: RunningApp,
                                                          city: Path) -> None:
    name = unique_db("postings_live")
    db = db_client[name]
    await load_content(db, city)
    settings = replace(app_server.settings, mongodb_db=name, content_dir=city)
    async with serve(settings, load_content=False) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        async def answers() -> tuple[list[str], list[str], list[str]]:
            return (await slugs(http, SEARCH, {"q": "华强北"}), await slugs(http, SEARCH, {"q": "手机"}),
                    await slugs(http, OPEN_NOW, {"d": DISTRICT}))

        before = await answers()
        assert before[0] and before[1]
        describe(city, "Sorting trays for loose parts.")
        loading = asyncio.create_task(load_content(db, city))
        during = []
        while not loading.done():
            during.append(await answers())
        report = await loading
        after = await answers()
    assert report.updated["merchants"] == 1
    assert during, "the load ended before a search was made"
    for searched in during:
        assert searched[:2] == before[:2]
        assert searched[2] in (before[2], after[2])  # open-now may turn a minute meanwhile
    assert after[:2] == before[:2]
    assert NEW_LIST in await postings_repository.every_list(db)  # the lists were rebuilt meanwhile


async def test_a_load_that_changes_no_merchant_leaves_the_lists_alone(db_client: Any, city: Path) -> None:
    db = db_client[unique_db("postings_skip")]
    await load_content(db, city)
    lists = await postings_repository.every_list(db)
    await db.merchant_postings.insert_one(dict(SENTINEL))

    def reword(data: dict[str, Any]) -> None:
        data["offers"][0]["title"]["en"] += " (dine-in)"
    edit(city / "offers.yaml", reword)
    report = await load_content(db, city)
    assert report.updated["offers"] == 1 and report.changed == 1
    assert await db.merchant_postings.find_one({"_id": SENTINEL["_id"]}) is not None

    describe(city, "Sorting trays for loose parts.")
    report = await load_content(db, city)
    assert report.updated["merchants"] == 1
    assert await db.merchant_postings.find_one({"_id": SENTINEL["_id"]}) is None
    changed = await postings_repository.every_list(db)
    assert NEW_LIST not in lists and NEW_LIST in changed


async def test_two_loads_at_once_both_finish_with_the_lists_one_would_build(db_client: Any, city: Path) -> None:
    alone, together = db_client[unique_db("postings_alone")], db_client[unique_db("postings_together")]
    await load_content(alone, city)
    await asyncio.gather(load_content(together, city), load_content(together, city))  # an empty database
    assert await postings_repository.every_list(together) == await postings_repository.every_list(alone)
    describe(city, "Sorting trays for loose parts.")
    await load_content(alone, city)
    first, second = await asyncio.gather(load_content(together, city), load_content(together, city))
    assert first.updated["merchants"] + second.updated["merchants"] >= 1
    assert await postings_repository.every_list(together) == await postings_repository.every_list(alone)


async def read_lists(db: Any, names: list[str]) -> dict[str, list[str]]:
    """The lists as a shopper's read finds them: heads by _id, then block by block."""
    found = await postings_repository.heads(db, names)
    return {name: [k async for k in postings_repository.walk(db, name, None, found.get(name))] for name in names}


async def test_every_read_during_a_rebuild_finds_each_list_whole(db_client: Any, city: Path) -> None:
    """The reads a search and open-now make, run between the rebuild's writes: a list is never missing a key
    it holds before and after (here a rebuild that rewrites every list, in several slices)."""
    db = db_client[unique_db("postings_reads")]
    await load_content(db, city)
    lists = await postings_repository.every_list(db)
    # a few dozen lists across the buckets, and the long ones (several blocks): each read is one or two finds,
    # so many of them fall between the rebuild's writes
    long = {n for n, keys in lists.items() if len(keys) > postings_repository.BLOCK}
    names = sorted({*sorted(lists)[::len(lists) // 40], *long})
    grown = {name: [*keys, "~new-shop"] for name, keys in lists.items()}
    assert len(list(postings_repository.block_docs({n: list(k) for n, k in grown.items()}))) > \
        2 * postings_repository.BULK_SLICE
    rebuilding = asyncio.create_task(postings_repository.replace_all(db, grown))
    reads = 0
    while not rebuilding.done() or not reads:
        seen = await read_lists(db, names)
        reads += 1
        assert not [n for n in names if set(lists[n]) - set(seen[n])]
    assert await rebuilding
    assert await read_lists(db, names) == {n: grown[n] for n in names}


async def test_a_back_office_edit_made_during_the_rebuild_is_not_lost(db_client: Any, city: Path) -> None:
    """The rebuild writes the back office's merchants as read before it; catch_up then moves those edited
    since to their lists as they are now."""
    db = db_client[unique_db("postings_edit")]
    await load_content(db, city)
    admin = (await make_account(db, "admin")).actor()
    data = service.ProfileInput(name={"zh-CN": "测试数码店", "en": "Test Qzxshop"}, phone="+86 755 8300 0009",
                                categories=["mobile-phones"], price_level=2, hours={d: ["09:00-21:00"] for d in DAYS},
                                lat=22.5445, lng=114.0855, area_id="hqb-seg-square")
    created = await service.create(db, admin, "huaqiangbei", data)
    as_read = [d async for d in merchants.back_office_merchant_docs(db)]
    renamed = replace(data, name={"zh-CN": "测试数码店", "en": "Test Qzyshop"})
    await service.update_profile(db, admin, created.id, renamed, created.version)
    now = [d async for d in merchants.back_office_merchant_docs(db)]
    await postings.rebuild(db, [], {}, as_read)  # the rebuild from the earlier read undoes the edit's lists
    assert postings.search_list(0, "qzxshop") in await postings_repository.every_list(db)
    await postings.catch_up(db, [], {}, as_read, now)
    lists = await postings_repository.every_list(db)
    assert {n for n, keys in lists.items() if created.id in keys} == postings.Entry.of(
        next(d for d in now if d["_id"] == created.id)).lists()
    assert postings.search_list(0, "qzxshop") not in lists and postings.search_list(0, "qzyshop") in lists


async def test_a_merchant_the_back_office_took_mid_load_is_counted_as_stored(db_client: Any, city: Path) -> None:
    """replace_missed names the merchants whose replace a back-office edit won, so the loader counts them as
    they are stored (here moved to another district), not as the files say."""
    db = db_client[unique_db("postings_counts")]
    await load_content(db, city)
    [record] = [m for m in parse_content(city)["merchants"] if m["_id"] == "hqb-xinpin-components"]
    record = {**record, "phone": "+86 755 1"}
    postings.take_tiers(record)
    await db.merchants.update_one({"_id": record["_id"]}, {"$set": {
        "origin": "backoffice", "content_hash": "edited", "district_id": "futian-cbd"}})
    lost = await replace_missed(db, "merchants", {record["_id"]: (record, record_digest(record))})
    assert lost == {record["_id"]}
    assert (await db.merchants.find_one({"_id": record["_id"]}))["district_id"] == "futian-cbd"


async def test_lists_built_early_give_way_when_the_back_office_took_a_merchant_since(db_client: Any,
                                                                                     city: Path) -> None:
    """The loader builds the content's lists while other collections are written (postings.build); a merchant
    the back office took meanwhile is then listed as stored, exactly as a build from scratch lists it."""
    db = db_client[unique_db("postings_early")]
    content = parse_content(city)["merchants"]
    tiers = {d["_id"]: postings.take_tiers(d) for d in content}
    early = postings.build(content, tiers)  # before the back office took anything
    taken = {**next(d for d in content if d["_id"] == "hqb-xinpin-components"), "origin": "backoffice",
             "name": {"zh-CN": "鑫品元件", "en": "Qzwparts"}}
    await postings.rebuild(db, content, tiers, [taken], early)
    from_scratch = postings.build(content, tiers, {taken["_id"]}, [taken]).lists
    assert await postings_repository.every_list(db) == {name: sorted(keys) for name, keys in from_scratch.items()}
    assert postings.search_list(0, "qzwparts") in from_scratch
