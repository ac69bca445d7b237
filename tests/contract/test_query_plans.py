"""Every repository read of the shopper pages is served by an index: pinned with `explain`.

Each test runs the real repository function against the shipped content, captures the commands it
sends (a pymongo CommandListener) and asks the server to explain each one.

* On a real MongoDB (TEST_MONGODB_URL): no plan holds a COLLSCAN or an in-memory SORT stage, and
  the documents examined stay within a bound set by the page size, not by the collection.
* On the embedded nx-27017, explain is SQLite's query plan (its executionStats are always zero, so
  documents examined cannot be read there): reads it can index must SEARCH an index, never SCAN the
  collection nor sort in a temporary B-tree, and each read returns no more documents than the bound.
  nx-27017 checks a filter on an array field (`$in`, `$all` on open_keys, categories) row by row
  (tests/contract/test_mongo_assumptions.py), and an equality on a field with no single-field index
  as if it might be an array (no index then): search and a district's open now therefore read
  postings lists (merchants/postings.py: first blocks by _id, later ones by a (list, last) range,
  `list` indexed alone too), and a read that could only scan (the capped category count) is pinned on
  a real MongoDB only.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from server.content.loader import load_content
from server.domain import boundaries
from server.domain.geo import Point
from server.domain.images import repository as images
from server.domain.images.models import Image, content_image_id, owner_ref
from server.domain.merchants import counts, postings, postings_repository
from server.domain.merchants import repository as merchants
from server.domain.merchants.derived import open_keys_at
from server.domain.offers import repository as offers
from server.domain.search.terms import index_terms, query_terms
from server.services import mongo
from server.settings import ROOT
from tests.conftest import unique_db

Doc = dict[str, Any]
REAL = bool(os.environ.get("TEST_MONGODB_URL"))
READS = frozenset({"find", "aggregate", "count", "distinct"})
SESSION = frozenset({"lsid", "$db", "$readPreference", "$clusterTime", "txnNumber"})
# 11:00 on a Friday in Shenzhen: most shops are open
NOON = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
HQB = Point(22.5445, 114.0830)


class Capture(CommandListener):
    def __init__(self) -> None:
        self.commands: list[Doc] = []
        # documents each read returned (its first batch): what the embedded server lets us count
        self.returned: list[int] = []
        self.on = False

    def started(self, event: CommandStartedEvent) -> None:
        if self.on and event.command_name in READS:
            self.commands.append({k: v for k, v in event.command.items() if k not in SESSION})

    def succeeded(self, event: CommandSucceededEvent) -> None:
        if self.on and event.command_name in READS:
            self.returned.append(len(event.reply.get("cursor", {}).get("firstBatch", [])))

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@pytest.fixture(scope="module")
async def setup(mongo_url: str) -> AsyncIterator[tuple[AsyncDatabase[Doc], Capture]]:
    capture = Capture()
    client: AsyncMongoClient[Doc] = mongo.connect(mongo_url, listeners=[capture])
    name = unique_db("plans")
    db = client[name]
    await mongo.ensure_indexes(db)
    await load_content(db, ROOT / "content")
    yield db, capture
    await client.drop_database(name)
    await client.close()


def _stages(plan: Any) -> list[str]:
    out: list[str] = []
    if isinstance(plan, dict):
        if isinstance(plan.get("stage"), str):
            out.append(plan["stage"])
        for value in plan.values():
            out.extend(_stages(value))
    elif isinstance(plan, list):
        for value in plan:
            out.extend(_stages(value))
    return out


def _nx_details(explained: Doc) -> list[str]:
    plan = explained.get("queryPlanner", {}).get("winningPlan", [])
    return [str(step.get("detail", "")) for step in plan] if isinstance(plan, list) else []


async def explain_reads(db: AsyncDatabase[Doc], capture: Capture, read: Callable[[], Awaitable[Any]],
                        *, max_examined: int | None = None, embedded_indexed: bool = True) -> list[Doc]:
    capture.commands.clear()
    capture.returned.clear()
    capture.on = True
    try:
        await read()
    finally:
        capture.on = False
    assert capture.commands, "the read sent no command"
    if max_examined is not None:
        assert all(n <= max_examined for n in capture.returned), (capture.commands, capture.returned)
    results = []
    for command in capture.commands:
        explained = await db.command("explain", command, verbosity="executionStats")
        collection = str(command[next(iter(command))])
        if REAL:
            stages = _stages(explained.get("queryPlanner", explained))
            stages += _stages(explained.get("stages", []))
            assert "COLLSCAN" not in stages, (command, stages)
            assert "SORT" not in stages, (command, stages)
            examined = _examined(explained)
            if max_examined is not None and examined is not None:
                assert examined <= max_examined, (command, examined)
        elif embedded_indexed and "aggregate" not in command:
            details = _nx_details(explained)
            assert any("USING INDEX" in d or "USING PRIMARY KEY" in d for d in details), (command, details)
            if "$in" in (command.get("filter") or {}).get("_id", {}):
                # read by _id, not along another index the filter names (a district's merchants, say)
                assert "(_id=?)" in details[0] or "PRIMARY KEY" in details[0], (command, details)
            assert not any(d.strip() == f"SCAN {collection}" for d in details), (command, details)
            assert not any("TEMP B-TREE" in d for d in details), (command, details)
        results.append(explained)
    return results


def _examined(explained: Doc) -> int | None:
    stats = explained.get("executionStats")
    if isinstance(stats, dict) and "totalDocsExamined" in stats:
        return int(stats["totalDocsExamined"])
    return None


async def test_district_listing_reads_a_page_by_key(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    db, capture = setup
    q = merchants.MerchantQuery(district_id="huaqiangbei")
    page = await merchants.find_page(db, q, 5, None)
    await explain_reads(db, capture, lambda: merchants.find_page(db, q, 5, page.items[-1][1]),
                        max_examined=5 + 1 + merchants.MARGIN)


async def test_area_listing_reads_a_page_by_key(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    db, capture = setup
    q = merchants.MerchantQuery(area_id="hqb-seg-square")
    await explain_reads(db, capture, lambda: merchants.find_page(db, q, 5, None),
                        max_examined=5 + 1 + merchants.MARGIN)


async def test_whole_city_listing_reads_a_page_by_key(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    db, capture = setup
    await explain_reads(db, capture, lambda: merchants.find_page(db, merchants.MerchantQuery(), 5, None),
                        max_examined=5 + 1 + merchants.MARGIN)


async def test_open_now_in_a_district(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """A first page reads the district's open lists' first blocks (the hour's and the two exception marks')
    in one read by _id, then a page and a margin of their merchants by _id; the next page and the capped
    count walk the lists by (list, last) ranges.  Nothing walks the district's merchants."""
    db, capture = setup
    q = merchants.MerchantQuery(district_id="huaqiangbei", open_at=NOON)
    page = await merchants.find_page(db, q, 5, None)
    assert page.has_next and all(m.open_at(NOON) for m, _, _ in page.items)
    await explain_reads(db, capture, lambda: merchants.find_page(db, q, 5, None),
                        max_examined=5 + 1 + merchants.MARGIN)
    assert [c["find"] for c in capture.commands] == ["merchant_postings", "merchants"]
    await explain_reads(db, capture, lambda: merchants.find_page(db, q, 5, page.items[-1][1]),
                        max_examined=5 + 1 + merchants.MARGIN)
    assert [c["find"] for c in capture.commands] == ["merchant_postings", "merchants"]
    n, floor = await merchants.count_matching(db, q)
    assert 0 < n <= merchants.NEAR_COUNT_READ and not floor
    await explain_reads(db, capture, lambda: merchants.count_matching(db, q),
                        max_examined=merchants.NEAR_COUNT_READ + merchants.MARGIN)


async def test_open_now_lists_hold_what_open_keys_say(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """The district's open lists are exactly the merchants whose open_keys hold the hour or a mark: the
    candidates the old walk of the district found, so pages and counts are the same."""
    db, _ = setup
    names = postings.open_lists("huaqiangbei", NOON)
    listed = [k async for k in postings.merged(db, names, None, await postings.heads(db, names))]
    expected = [d["_id"] async for d in db.merchants.find(
        {"district_id": "huaqiangbei", "status": "published", "open_keys": {"$in": open_keys_at(NOON)}},
        {"_id": 1}).sort([("key", 1)])]
    assert listed == expected and listed


async def test_near_reads_band_ranges(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    db, capture = setup
    q = merchants.MerchantQuery(near=(HQB, 2_000))
    page = await merchants.find_page(db, q, 5, None)
    assert [d for _, _, d in page.items] == sorted(d for _, _, d in page.items if d is not None)
    await explain_reads(db, capture, lambda: merchants.find_page(db, q, 5, None))


async def test_search_tiers(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """A first page of a one-term search: the three tiers' lists' first blocks in one read by _id, then a
    page and a margin of merchants by _id; the next page walks its tier's list from the cursor."""
    db, capture = setup
    for term in ("手机", "hqb"):
        page = await merchants.find_page(db, merchants.MerchantQuery(terms=[term]), 5, None)
        assert page.has_next
        await explain_reads(db, capture, lambda t=term: merchants.search(db, [t], 10),  # type: ignore[misc]
                            max_examined=10 + 1 + merchants.MARGIN)
        assert [c["find"] for c in capture.commands] == ["merchant_postings", "merchants"], capture.commands
        q = merchants.MerchantQuery(terms=[term])
        await explain_reads(db, capture, lambda q=q, k=page.items[-1][1]: merchants.find_page(db, q, 5, k),  # type: ignore[misc]
                            max_examined=5 + 1 + merchants.MARGIN)


async def test_search_lists_hold_each_term_at_its_first_tier(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """Every published merchant is on the list of each of its terms, at the first of name, name or address,
    anywhere that holds it (derived again here from its texts), and on no other search list."""
    db, _ = setup
    on: dict[str, set[str]] = {}
    for name, keys in (await postings_repository.every_list(db)).items():
        for key in keys if name.startswith(postings.SEARCH) else []:
            on.setdefault(key, set()).add(name)
    count = 0
    async for doc in db.merchants.find({"status": "published"}):
        name, address = [*doc["name"].values()], [*(doc.get("address") or {}).values()]
        anywhere = [*name, *address, *doc["categories"], *(doc.get("description") or {}).values()]
        tiers = [set(index_terms(name)), set(index_terms([*name, *address])), set(index_terms(anywhere))]
        assert not {"name_terms", "title_terms", "search_terms"} & set(doc)
        expected = {postings.search_list(min(t for t in range(3) if term in tiers[t]), term) for term in tiers[2]}
        assert on.get(doc["_id"], set()) == expected, doc["_id"]
        count += 1
    assert count > 100


async def test_capped_count(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    db, capture = setup
    q = merchants.MerchantQuery(district_id="huaqiangbei", categories=["electronics"])
    n, floor = await merchants.count_matching(db, q)
    assert n > 0 and not floor
    await explain_reads(db, capture, lambda: merchants.count_matching(db, q), embedded_indexed=False)


async def test_counters_and_ids_read_by_id(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    db, capture = setup
    found = await counts.by_keys(db, [counts.district_key("huaqiangbei"), counts.ALL])
    assert found[counts.ALL] >= found[counts.district_key("huaqiangbei")] > 0
    await explain_reads(db, capture, lambda: counts.by_keys(db, [counts.district_key("huaqiangbei")]))
    await explain_reads(db, capture, lambda: merchants.merchants_by_ids(db, ["hqb-huaqiang-digital-phone-mall"]))


async def test_active_offers_of_a_page_of_merchants(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    db, capture = setup
    ids = await merchants.ids_in_district(db, "huaqiangbei")
    found = await offers.active_by_merchants(db, ids[:20], NOON)
    assert found
    # point reads by _id: the merchants' lists of offers, then their offers active now (the embedded server
    # scans for any $in on a field other than _id: test_mongo_assumptions.py)
    await explain_reads(db, capture, lambda: offers.active_by_merchants(db, ids[:20], NOON),
                        max_examined=20 + sum(len(v) for v in found.values()))
    assert [(c["find"], list(c["filter"]["_id"])) for c in capture.commands] == [
        ("offers_by_merchant", ["$in"]), ("offers", ["$in"])]


async def test_a_page_of_owners_reads_its_pictures_by_id(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """A page's pictures whatever the city holds: the owners' lists of uploads, then those records and the
    content pictures, both by _id (a query on `owner` read every image on the embedded server); in (position,
    _id) order, an upload before the content picture, and a listed id without a record skipped."""
    db, capture = setup
    shops = (await merchants.ids_in_district(db, "huaqiangbei"))[:20]
    refs = [*(owner_ref("merchant", m) for m in shops), owner_ref("festival", "winter-shopping-season-2026"),
            owner_ref("product", "shajing-oyster")]
    photo = Image("plans-upload", "0" * 24, "merchant", shops[0], {"en": "front"}, 640, 400, (320, 640))
    for image_id in ("plans-upload", "plans-deleted"):
        await images.list_image(db, refs[0], image_id)
    await images.insert_image(db, images.as_doc(photo, {"position": 1.7e9, "origin": "backoffice"}))
    try:
        found = await images.by_owners(db, refs)
        assert [i.id for i in found[refs[0]]] == ["plans-upload", content_image_id("merchant", shops[0])]
        assert all([i.id for i in found[r]] == [content_image_id(*r.split(":", 1))] for r in refs[1:])
        await explain_reads(db, capture, lambda: images.by_owners(db, refs), max_examined=len(refs) + 1)
        assert [(c["find"], list(c["filter"]["_id"])) for c in capture.commands] == [
            ("images_by_owner", ["$in"]), ("images", ["$in"])]
    finally:
        await images.delete_image(db, "plans-upload")
        for image_id in ("plans-upload", "plans-deleted"):
            await images.unlist_image(db, refs[0], image_id)


async def test_offer_lists_follow_the_offers(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """The per-merchant lists the page reads hold exactly the published offers, as the loader left them."""
    db, _ = setup
    published = {d["_id"]: d["merchant_id"] async for d in db.offers.find({"status": "published"})}
    listed = {o["_id"]: d["_id"] async for d in db.offers_by_merchant.find({}) for o in d["offers"]}
    assert published and listed == published


async def test_offers_ending_soon_read_the_until_key_index(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """Home's "ending soon" and the offer lists: one range on until_key ("valid_until _id" as a string; nx-27017
    compares dates through SQLite's datetime(), which no index serves), the next page too, in (valid_until,
    _id) order."""
    db, capture = setup
    q = offers.OfferQuery(active_at=NOON, ending_before=NOON + timedelta(days=30))
    first = await offers.find_page(db, q, 3, None)
    second = await offers.find_page(db, q, 3, first.items[-1][1])
    ends = [(o.valid_until, o.id) for page in (first, second) for o, _, _ in page.items]
    assert len(ends) == 6 and ends == sorted(ends) and len(set(ends)) == 6
    assert all(o.active_at(NOON) for page in (first, second) for o, _, _ in page.items)
    await explain_reads(db, capture, lambda: offers.find_page(db, q, 3, None), max_examined=4)
    await explain_reads(db, capture, lambda: offers.find_page(db, q, 3, first.items[-1][1]), max_examined=4)


async def test_the_catalogue_next_change_reads_one_index_entry_per_field(
        setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """How long a cached public answer may live (server/domain/boundaries.py): the first offer or festival to
    begin or end and the next scheduled campaign, each a one-document walk of its index."""
    db, capture = setup
    await explain_reads(db, capture, lambda: boundaries.next_change(db, NOON), max_examined=1)


def _tier(doc: Doc, terms: list[str]) -> int | None:
    """A search's rank for a merchant, derived here from its texts: name, then name or address, then anywhere."""
    name, address = [*doc["name"].values()], [*(doc.get("address") or {}).values()]
    anywhere = [*name, *address, *doc["categories"], *(doc.get("description") or {}).values()]
    for tier, texts in enumerate((name, [*name, *address], anywhere)):
        if set(terms) <= set(index_terms(texts)):
            return tier
    return None


async def _expected(db: AsyncDatabase[Doc], terms: list[str], district_id: str | None = None) -> list[str]:
    query: Doc = {"status": "published", **({"district_id": district_id} if district_id else {})}
    ranked = [(t, d["_id"]) async for d in db.merchants.find(query) if (t := _tier(d, terms)) is not None]
    return [mid for _, mid in sorted(ranked)]


@pytest.mark.parametrize("text", ["手机", "hqb", "华强北", "华强北 手机", "沙井蚝", "数码"])
async def test_search_order_and_counts_are_the_documents_own(setup: tuple[AsyncDatabase[Doc], Capture],
                                                             text: str) -> None:
    """Every page of a search, cursor after cursor, is the published merchants ranked by tier then id (ranks
    derived here from the texts), and totalCount counts them; with a district too."""
    db, capture = setup
    terms = query_terms(text)
    for district in (None, "huaqiangbei"):
        expected = await _expected(db, terms, district)
        q = merchants.MerchantQuery(terms=terms, district_id=district)
        got: list[str] = []
        after = None
        while True:
            page = await merchants.find_page(db, q, 4, after)
            got.extend(m.id for m, _, _ in page.items)
            if not page.has_next:
                break
            after = page.items[-1][1]
        assert got == expected, (text, district)
        assert await merchants.count_matching(db, q) == (len(expected), False)
    # a one-term count reads the lengths of the term's three lists: their first blocks, in one read
    if len(terms) == 1:
        await explain_reads(db, capture, lambda: merchants.count_matching(db, merchants.MerchantQuery(terms=terms)),
                            max_examined=3)
        assert [c["find"] for c in capture.commands] == ["merchant_postings"]


async def test_a_list_grows_from_its_bucket_into_blocks_and_back(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """Back-office writes keep a list readable in order at every size: in its bucket while short, then in a
    head block, split in two past SPLIT_AT keys; removing keys leaves exactly the rest."""
    db, _ = setup
    name = postings.search_list(2, "zz-growing-test")
    keys = [f"k{i:04d}" for i in range(postings_repository.SPLIT_AT + 3)]
    for key in reversed(keys):  # every insert lands before the keys already there
        await postings_repository.add(db, name, key)
        if key == keys[-postings_repository.SMALL + 1]:
            assert (await db.merchant_postings.find_one({"_id": name})) is None  # still in its bucket
    assert (await db.merchant_postings.count_documents({"list": name})) == 2  # a head and the split-off half

    async def read(after: str | None) -> list[str]:
        return [k async for k in postings.merged(db, [name], after, await postings.heads(db, [name]))]

    assert await read(None) == keys
    assert await read(keys[700]) == keys[701:]
    assert await postings.length(db, [name], 2000) == len(keys)
    assert await postings.length(db, [name], 1000) == 1000
    for key in keys[5:]:
        await postings_repository.remove(db, name, key)
    assert await read(None) == keys[:5]
    assert (await postings_repository.every_list(db))[name] == keys[:5]


async def test_push_sweep_reads_waiting_records_by_state_and_due(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """The worker's sweep (every second, per worker) walks the (state, due) index: finished records, the bulk
    of a large campaign's, are never read."""
    from server.domain.push.delivery_repository import Deliveries
    from server.domain.push.models import DELIVERIES

    db, capture = setup
    await db[DELIVERIES].insert_many(
        [{"_id": f"c:{i:04d}", "campaign_id": "c", "state": "delivered" if i % 10 else "retry", "due": float(i)}
         for i in range(200)])
    try:
        due = await Deliveries(db).due_ids(100.0, 500)
        assert sorted(due) == [f"c:{i:04d}" for i in range(0, 101, 10)]
        await explain_reads(db, capture, lambda: Deliveries(db).due_ids(100.0, 500), max_examined=11)
    finally:
        await db[DELIVERIES].delete_many({"campaign_id": "c"})


async def test_push_sweep_takes_waiting_states_in_turns(setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """A backlog of stale claims ("sending", a killed worker's) does not fill every sweep: retries and deferred
    messages get their turn in the same sweep."""
    from server.domain.push.delivery_repository import Deliveries
    from server.domain.push.models import DELIVERIES

    db, _ = setup
    states = ["sending"] * 30 + ["retry"] * 3 + ["deferred"] * 2
    await db[DELIVERIES].insert_many([{"_id": f"t:{i:04d}", "campaign_id": "t", "state": state, "due": 1.0}
                                      for i, state in enumerate(states)])
    try:
        due = await Deliveries(db).due_ids(100.0, 10)
        taken = [states[int(record_id[2:])] for record_id in due]
        assert len(due) == 10 and taken.count("retry") == 3 and taken.count("deferred") == 2, taken
    finally:
        await db[DELIVERIES].delete_many({"campaign_id": "t"})


def _merchant_keys_read(capture: Capture) -> int:
    """Keys the captured merchant reads asked for by `_id $in` (flat or inside an $and)."""
    total = 0
    for command in capture.commands:
        if command.get("find") != "merchants":
            continue
        query = command.get("filter", {})
        for part in [query, *query.get("$and", [])]:
            total += len((part.get("_id") or {}).get("$in", []))
    return total


@pytest.mark.parametrize("text", ["深圳", "shenzhen district"])
async def test_a_filtered_search_walks_at_most_the_cap_per_page(setup: tuple[AsyncDatabase[Doc], Capture],
                                                                monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """A search for a word common across the city, filtered to a district that holds few of its merchants,
    reads at most WALK_CAP keys a page (lowered here so that the shipped city exceeds it): a page cut short
    says there is more and its end cursor continues the walk, and the pages together are the same merchants
    in the same order as with no cap."""
    db, capture = setup
    terms = query_terms(text)
    district = "prince-bay"
    expected = await _expected(db, terms, district)
    city = await _expected(db, terms)
    cap = 6
    assert len(city) > 3 * cap and len(expected) < len(city) // 2, (len(city), len(expected))
    monkeypatch.setattr(merchants, "WALK_CAP", cap, raising=False)
    q = merchants.MerchantQuery(terms=terms, district_id=district)
    got: list[str] = []
    after = None
    short = 0
    for _ in range(100):
        capture.commands.clear()
        capture.on = True
        try:
            page = await merchants.find_page(db, q, 4, after)
        finally:
            capture.on = False
        assert _merchant_keys_read(capture) <= cap
        got.extend(m.id for m, _, _ in page.items)
        short += page.has_next and len(page.items) < 4
        if not page.has_next:
            break
        after = page.resume if page.resume is not None else page.items[-1][1]
    assert got == expected and short
    # the count walks the same capped lists: a floor once the walk stops short
    capture.commands.clear()
    capture.on = True
    try:
        n, floor = await merchants.count_matching(db, q)
    finally:
        capture.on = False
    assert floor and n <= len(expected) and _merchant_keys_read(capture) <= cap


async def test_a_near_search_for_a_word_nobody_has_reads_no_merchant(
        setup: tuple[AsyncDatabase[Doc], Capture]) -> None:
    """Near a point with the widest radius, a word on no list reads no merchant (it used to read every
    merchant of a box grown to the radius), and a rare word reads only the merchants on its lead term's
    lists."""
    db, capture = setup
    q = merchants.MerchantQuery(near=(HQB, 20_000), terms=query_terms("zzqqxxnobody"))
    capture.commands.clear()
    capture.returned.clear()
    capture.on = True
    try:
        page = await merchants.find_page(db, q, 5, None)
    finally:
        capture.on = False
    assert not page.items and not page.has_next
    merchant_reads = [n for c, n in zip(capture.commands, capture.returned, strict=True)
                      if c.get("find") == "merchants"]
    assert sum(merchant_reads) == 0, (capture.commands, capture.returned)
    terms = query_terms("沙井蚝")
    rare = await _expected(db, terms)
    assert 0 < len(rare) < 20
    lng, lat = (await db.merchants.find_one({"_id": rare[0]}))["location"]["coordinates"]  # type: ignore[index]
    q = merchants.MerchantQuery(near=(Point(lat, lng), 20_000), terms=terms)
    capture.commands.clear()
    capture.returned.clear()
    capture.on = True
    try:
        page = await merchants.find_page(db, q, 30, None)
    finally:
        capture.on = False
    assert sorted(m.id for m, _, _ in page.items) == sorted(rare) or len(page.items) == 30
    assert [d for _, _, d in page.items] == sorted(d for _, _, d in page.items if d is not None)
    lists = [postings.search_list(t, postings.lead_term(terms)) for t in range(postings.TIERS)]
    lead = [k async for k in postings.merged(db, lists, None, await postings.heads(db, lists))]
    assert len(lead) < 162 // 4
    assert all(n <= len(lead) for c, n in zip(capture.commands, capture.returned, strict=True)
               if c.get("find") == "merchants")
