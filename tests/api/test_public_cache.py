"""The public read cache: hits, 304s without MongoDB, writes visible on the next read through any web process,
what is never cached, Redis stopping, and the memory bound.

Each test runs its own app(s) on its own database (tests/fixtures/content) so that writes stay here.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis.asyncio as aioredis

from server.api.cached_reads import JITTER_MS, MAX_TTL_MS, KnownReads, Operations, lifetime_ms
from server.api.ids import to_global
from server.domain import boundaries
from server.domain.accounts import service as accounts
from server.domain.geo import Point, haversine_m
from server.domain.merchants.models import Merchant
from server.domain.offers.models import until_key
from server.plumbing.persisted import allow_list
from server.services.public_cache import HEAD_BYTES
from server.settings import ROOT
from tests.conftest import CommandCounter, RunningApp, gql, unique_db
from tests.ops.servers import RedisServer, serve
from tests.support import make_account

DISTRICT, SHOP, AREA = "huaqiangbei", "hqb-phone-city", "hqb-north"  # tests/fixtures/content
FIXTURES = ROOT / "tests" / "fixtures" / "content"
HASHES = {text.split("(")[0].split()[1]: sha for sha, text in allow_list().items()}
NOW = datetime.now(UTC)


def persisted(name: str, **variables: Any) -> dict[str, str]:
    return {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": HASHES[name]}}),
            "variables": json.dumps(variables)}


def district_screen(locale: str = "zh-CN") -> dict[str, str]:
    return persisted("DistrictScreen", id=to_global("District", DISTRICT), locale=locale)


def merchant_page(locale: str = "zh-CN") -> dict[str, str]:
    return persisted("MerchantPage", id=to_global("Merchant", SHOP), locale=locale)


@pytest.fixture
async def settings_here(app_server: RunningApp, tmp_path: Path) -> Any:
    return replace(app_server.settings, mongodb_db=unique_db("cache"), var_dir=tmp_path, content_dir=FIXTURES)


@pytest.fixture
async def one_app(settings_here: Any) -> AsyncIterator[tuple[str, CommandCounter]]:
    counter = CommandCounter()
    async with serve(settings_here, mongo_listeners=[counter]) as url:
        yield url, counter


async def test_second_read_is_a_hit_and_a_304_sends_no_mongodb_command(
        one_app: tuple[str, CommandCounter]) -> None:
    url, counter = one_app
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        first = await http.get("/graphql", params=merchant_page())
        assert first.status_code == 200 and first.headers["x-cache"] == "miss"
        counter.commands.clear()
        counter.enabled = True
        second = await http.get("/graphql", params=merchant_page())
        third = await http.get("/graphql", params=merchant_page(), headers={"if-none-match": first.headers["etag"]})
        counter.enabled = False
        assert second.headers["x-cache"] == "hit" and second.content == first.content
        assert second.headers["content-type"] == first.headers["content-type"]
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["cache-control"] == "public, no-cache" and "age" in second.headers
        assert second.headers["vary"] == first.headers["vary"] == "Accept, Accept-Language"
        assert third.status_code == 304 and third.content == b"" and third.headers["etag"] == first.headers["etag"]
        assert counter.commands == []  # neither the hit nor the 304 asked MongoDB anything
        # another locale is another answer
        english = await http.get("/graphql", params=merchant_page("en"))
        assert english.headers["x-cache"] == "miss" and english.content != first.content
        # a conditional GET on a miss still ends in 304 when the answer is the same
        await http.get("/graphql", params=persisted("Districts", locale="en"))


async def test_the_access_log_names_a_cached_read_by_its_operation(
        one_app: tuple[str, CommandCounter], caplog: pytest.LogCaptureFixture) -> None:
    """The cache names the operation for the access log and metrics, so a hit is not parsed a second time."""
    url, _ = one_app
    caplog.set_level(logging.INFO, logger="shangquan.access")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        miss = await http.get("/graphql", params=merchant_page("zh-HK"))
        hit = await http.get("/graphql", params=merchant_page("zh-HK"))
        revalidated = await http.get("/graphql", params=merchant_page("zh-HK"),
                                     headers={"if-none-match": hit.headers["etag"]})
    assert [miss.headers["x-cache"], hit.headers["x-cache"], revalidated.status_code] == ["miss", "hit", 304]
    logged = [(r.__dict__["status"], r.__dict__["graphql_operation"]) for r in caplog.records
              if r.name == "shangquan.access" and r.__dict__.get("path") == "/graphql"]
    assert logged[-3:] == [(200, "MerchantPage"), (200, "MerchantPage"), (304, "MerchantPage")]


async def test_a_304_reads_only_the_etag_from_redis(one_app: tuple[str, CommandCounter], settings_here: Any) -> None:
    """A conditional GET asks Redis for the entry's header only (GETRANGE of its first bytes): Redis sends far
    less than the page for a 304, while an old ETag still gets the whole page from the cache."""
    url, _ = one_app
    client = aioredis.from_url(settings_here.redis_url)
    page = persisted("DistrictPage", id=to_global("District", DISTRICT), locale="zh-CN")

    async def sent_by_redis(http: httpx.AsyncClient, etag: str) -> tuple[httpx.Response, int, dict[str, Any]]:
        await client.config_resetstat()
        before = int((await client.info("stats"))["total_net_output_bytes"])
        answer = await http.get("/graphql", params=page, headers={"if-none-match": etag})
        after = int((await client.info("stats"))["total_net_output_bytes"])
        return answer, after - before, await client.info("commandstats")

    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            first = await http.get("/graphql", params=page)
            assert first.headers["x-cache"] == "miss" and len(first.content) > 1000
            conditional, sent_304, commands = await sent_by_redis(http, first.headers["etag"])
            assert (conditional.status_code, conditional.headers["x-cache"]) == (304, "hit")
            assert conditional.headers["etag"] == first.headers["etag"] and conditional.content == b""
            assert "cmdstat_get" not in commands and commands["cmdstat_getrange"]["calls"] == 1
            old, sent_200, commands = await sent_by_redis(http, '"not-this-one"')
            assert (old.status_code, old.headers["x-cache"], old.content) == (200, "hit", first.content)
            assert commands["cmdstat_get"]["calls"] == 1
            # the 304 moved the page's bytes less (all but the first HEAD_BYTES, which both read)
            assert sent_200 - sent_304 >= len(first.content) - HEAD_BYTES, (sent_304, sent_200)
    finally:
        await client.aclose()


async def test_what_is_never_cached(one_app: tuple[str, CommandCounter], settings_here: Any) -> None:
    url, _ = one_app
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        district_page = persisted("DistrictPage", id=to_global("District", DISTRICT), after="YWJj")
        near = persisted("Merchants", filter={"near": {"lat": 22.5401, "lng": 114.08, "radiusMeters": 5000}})
        unknown_variable = persisted("MerchantPage", id=to_global("Merchant", SHOP), extra=1)
        missing = persisted("MerchantPage", id=to_global("Merchant", "no-such-shop"))
        for params in (district_page, near, unknown_variable, missing, missing):
            response = await http.get("/graphql", params=params)
            assert "x-cache" not in response.headers or response.headers["x-cache"] == "miss", params
            again = await http.get("/graphql", params=params)
            assert again.headers.get("x-cache") != "hit", params
        # bad input keeps its error codes
        bad_hash = await http.get("/graphql", params={"extensions": json.dumps(
            {"persistedQuery": {"version": 1, "sha256Hash": "zz"}})})
        assert bad_hash.status_code == 400 and "PersistedQueryNotFound" in bad_hash.text
        assert unknown_variable.get("variables")
        bad_id = await http.get("/graphql", params=persisted("MerchantPage", id="!!"))
        assert bad_id.json()["errors"][0]["extensions"]["code"] == "INVALID_ID"
        assert (await http.get("/graphql", params=persisted("MerchantPage", id="!!"))).headers.get("x-cache") != "hit"
        # a bearer token is never answered from the cache, nor another operation's name or media type
        await http.get("/graphql", params=merchant_page())
        wrong_name = await http.get("/graphql", params={**merchant_page(), "operationName": "DistrictPage"})
        assert wrong_name.headers.get("x-cache") != "hit"
        other_media = await http.get("/graphql", params=merchant_page(),
                                     headers={"accept": "application/graphql-response+json"})
        assert other_media.headers.get("x-cache") != "hit"
        token = await http.get("/graphql", params=merchant_page(), headers={"authorization": "Bearer nope"})
        assert token.headers.get("x-cache") != "hit"
    # an answer larger than the entry limit is not stored
    small = replace(settings_here, public_cache_max_entry_bytes=1024, mongodb_db=settings_here.mongodb_db + "s")
    async with serve(small) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(2):
            page = await http.get("/graphql", params=merchant_page())
            assert len(page.content) > 1024 and page.headers["x-cache"] == "miss"


async def test_near_me_from_a_grid_point_is_cached_and_shows_a_write_on_the_next_read(
        settings_here: Any, db_client: Any) -> None:
    """The PWA asks "near me" from a point of the grid (server/domain/geo.py): phones of one street share the
    answer, whose distances are exact from that point; a merchant's write outdates it like any listing."""
    async with serve(settings_here) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        headers = await _tokens(db_client[settings_here.mongodb_db])
        shop = (await gql(http, '{ merchant(id: "%s") { location { lat lng } } }'
                          % to_global("Merchant", SHOP)))["data"]["merchant"]["location"]
        grid = {"lat": round(shop["lat"] * 500) / 500, "lng": round(shop["lng"] * 500) / 500, "radiusMeters": 5000}
        near = persisted("Merchants", filter={"near": grid}, first=20, locale="zh-CN")
        first = await http.get("/graphql", params=near)
        again = await http.get("/graphql", params=near)
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
        edges = again.json()["data"]["merchants"]["edges"]
        centre = Point(grid["lat"], grid["lng"])
        for edge in edges:
            where = edge["node"]["location"]
            assert edge["distanceMeters"] == pytest.approx(haversine_m(centre, Point(where["lat"], where["lng"])),
                                                           abs=0.1)
        assert [e["distanceMeters"] for e in edges] == sorted(e["distanceMeters"] for e in edges)
        # off the grid (a phone's own position) or another radius: answered, never from the cache
        for other in ({**grid, "lat": grid["lat"] + 0.0001}, {**grid, "radiusMeters": 4000}):
            params = persisted("Merchants", filter={"near": other}, first=20, locale="zh-CN")
            for _ in range(2):
                answer = await http.get("/graphql", params=params)
                assert answer.status_code == 200 and answer.headers.get("x-cache") != "hit"
        made = (await gql(http, "mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) "
                          "{ %s } }" % OFFER_FIELDS, {"m": to_global("Merchant", SHOP), "i": offer_input("近")},
                          headers["shop"]))["data"]["createOffer"]["offer"]
        await gql(http, 'mutation { publishOffer(id: "%s", version: 1) { %s } }' % (made["id"], OFFER_FIELDS),
                  headers=headers["shop"])
        after = await http.get("/graphql", params=near)
        assert after.headers["x-cache"] == "miss"
        offers = {o["id"] for e in after.json()["data"]["merchants"]["edges"] for o in e["node"]["offers"]}
        assert made["id"] in offers


async def test_the_inbox_is_cached_per_set_of_districts_until_a_campaign_is_stored_or_cancelled(
        settings_here: Any, db_client: Any) -> None:
    """The inbox (the same campaign messages for every phone following these districts and topics) is one
    entry; creating a campaign and cancelling it show on the very next read, through either web process."""
    async with serve(settings_here) as url_a, serve(settings_here, load_content=False) as url_b, \
            httpx.AsyncClient(base_url=url_a, timeout=30) as a, httpx.AsyncClient(base_url=url_b, timeout=30) as b:
        operator = await make_account(db_client[settings_here.mongodb_db], "operator", district_ids=[DISTRICT])
        secret = (await accounts.create_token(db_client[settings_here.mongodb_db], operator.actor(), "ops",
                                              ["districts"])).secret
        headers = {"authorization": f"Bearer {secret}"}
        inbox = persisted("Inbox", districts=[to_global("District", DISTRICT)], topics=["OFFERS"], first=20,
                          locale="zh-CN")

        async def shown(http: httpx.AsyncClient, expected: str) -> set[str]:
            answer = await http.get("/graphql", params=inbox)
            assert answer.status_code == 200 and answer.headers["x-cache"] == expected, answer.text
            assert "public" in answer.headers["cache-control"]
            return {e["node"]["id"] for e in answer.json()["data"]["inbox"]["edges"]}

        before = await shown(a, "miss")
        assert await shown(b, "hit") == before
        made = await gql(b, """mutation ($input: CampaignInput!) { createCampaign(input: $input) {
            campaign { id } errors { code } } }""", {"input": {
            "title": {"zhCN": "华强北周末市集"}, "body": {"zhCN": "周六周日"},
            "districtIds": [to_global("District", DISTRICT)], "topics": ["OFFERS"]}}, headers)
        assert made["data"]["createCampaign"]["errors"] == [], made
        campaign = made["data"]["createCampaign"]["campaign"]["id"]
        assert await shown(a, "miss") == before | {campaign}
        assert await shown(b, "hit") == before | {campaign}
        cancelled = await gql(a, 'mutation { cancelCampaign(id: "%s") { errors { code } } }' % campaign,
                              headers=headers)
        assert cancelled["data"]["cancelCampaign"]["errors"] == [], cancelled
        assert await shown(b, "miss") == before
        # other districts or topics are other entries; a list that is not a few district ids is never cached
        other = persisted("Inbox", districts=[to_global("District", DISTRICT)], topics=["FESTIVALS"], locale="zh-CN")
        assert (await a.get("/graphql", params=other)).headers["x-cache"] == "miss"
        for bad in (persisted("Inbox", districts=[], locale="en"), persisted("Inbox", districts=["!!"], locale="en"),
                    persisted("Inbox", districts=[to_global("District", DISTRICT)], after="YWJj", locale="en")):
            for _ in range(2):
                assert (await a.get("/graphql", params=bad)).headers.get("x-cache") != "hit", bad


async def test_a_process_remembers_a_bounded_number_of_parsed_urls() -> None:
    """A hit skips parsing the URL again (KnownReads), and an attacker cycling URLs cannot grow the process."""
    reads = KnownReads(Operations.load())
    url = urlencode(merchant_page()).encode()
    first = reads.get(url, b"", b"")
    assert first is not None and reads.get(url, b"", b"") is first
    assert reads.get(url, b"en", b"") is not first  # the headers are part of what was asked
    for n in range(KnownReads.MAX_ENTRIES + 10):
        assert reads.get(urlencode(persisted("Search", query=f"x{n}")).encode(), b"", b"") is not None
    assert len(reads.known) == KnownReads.MAX_ENTRIES
    assert reads.get(b"variables=" + b"1" * KnownReads.MAX_URL_BYTES, b"", b"") is None
    assert len(reads.known) == KnownReads.MAX_ENTRIES and (url, b"", b"") not in reads.known


async def test_entries_end_at_the_next_boundary_of_their_data() -> None:
    """Each kind of boundary: past the minute when nothing turns, exactly at the boundary when something does."""
    now = datetime(2027, 2, 6, 13, 59, 30, tzinfo=UTC).timestamp()  # 21:59:30 in Shenzhen
    cap = MAX_TTL_MS - 5_000
    quiet = {"district": {"name": "华强北", "festivals": [{"startsAt": "2027-01-01T00:00:00+08:00"}]}}
    assert lifetime_ms(quiet, now, live=False, jitter_ms=5_000) == cap > 60_000  # no boundary near: the cap
    assert lifetime_ms(quiet, now, live=False, jitter_ms=0) == MAX_TTL_MS  # the jitter only shortens
    # open-now turns at the quarter-hour: shown, or deciding which places are listed; not otherwise
    assert lifetime_ms({"m": [{"openNow": True}]}, now, live=False) == 30_000
    assert lifetime_ms({"m": [{"closesAt": None}]}, now + 60, live=False) == 14 * 60_000 + 30_000
    assert lifetime_ms(quiet, now, live=False, by_hours=True) == 30_000
    # with each shown merchant's own next turn (from its hours), the earliest of them; none known: the quarter
    shown = {"m": [{"openNow": True, "closesAt": "22:30"}, {"openNow": False}]}
    assert lifetime_ms(shown, now, live=False, open_turns=[now + 630, now + 7230]) == 630_000
    assert lifetime_ms(shown, now, live=False, open_turns=[math.inf]) == MAX_TTL_MS
    assert lifetime_ms(shown, now, live=False, open_turns=[]) == 30_000
    assert lifetime_ms(quiet, now, live=False, by_hours=True, open_turns=[math.inf]) == 30_000  # a filter: quarter
    # an offer or a festival in the answer beginning or ending
    at = datetime.fromtimestamp(now, UTC)
    for field in ("validFrom", "validUntil", "startsAt", "endsAt"):
        soon = (at + timedelta(minutes=7)).isoformat()
        assert lifetime_ms({"a": [{"offers": [{field: soon}]}]}, now, live=False) == 7 * 60_000, field
    # one that is not in the answer yet: the catalogue's next change (an offer becoming valid, a campaign's send
    # time) ends it all the same
    assert lifetime_ms(quiet, now, live=False, next_change=now + 420) == 7 * 60_000
    assert lifetime_ms(quiet, now, live=False, next_change=now + 3600) == MAX_TTL_MS
    # crowd levels: 10 s at most
    assert lifetime_ms(quiet, now, live=True) == 10_000
    # Shenzhen's midnight (answers that speak of today)
    late = datetime(2027, 2, 6, 15, 55, tzinfo=UTC).timestamp()  # 23:55 in Shenzhen
    assert lifetime_ms(quiet, late, live=False) == 5 * 60_000


def test_a_merchants_next_turn_is_when_open_now_changes() -> None:
    """From its hours (on quarter-hours) and holiday exceptions: the first instant its open-now differs."""
    night = Merchant.from_doc({"_id": "night", "district_id": "d", "area_id": "a", "name": {}, "location": {
        "coordinates": [114.0, 22.5]}, "hours": {day: ["18:00-03:00"] for day in
                                                 ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})
    shenzhen = ZoneInfo("Asia/Shanghai")
    noon = datetime(2027, 3, 3, 12, 7, tzinfo=shenzhen)
    assert night.next_turn(noon, noon + timedelta(days=1)) == datetime(2027, 3, 3, 18, 0, tzinfo=shenzhen)
    evening = datetime(2027, 3, 3, 18, 0, tzinfo=shenzhen)  # opens at 18:00 sharp: the next turn is closing
    assert night.next_turn(evening, evening + timedelta(days=1)) == datetime(2027, 3, 4, 3, 0, tzinfo=shenzhen)
    assert night.next_turn(noon, noon + timedelta(hours=5)) is None  # none before `until`
    always = replace(night, spans=Merchant.from_doc({**_doc(night), "hours": {
        day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}).spans)
    assert always.next_turn(noon, noon + timedelta(days=1)) is None
    closed_today = Merchant.from_doc({**_doc(night), "hours_exceptions": [{"date": "2027-03-03", "spans": []}]})
    assert closed_today.open_at(evening) is False
    assert closed_today.next_turn(noon, noon + timedelta(days=2)) == datetime(2027, 3, 4, 18, 0, tzinfo=shenzhen)


def _doc(merchant: Merchant) -> dict[str, Any]:
    return {"_id": merchant.id, "district_id": "d", "area_id": "a", "name": {},
            "location": {"coordinates": [114.0, 22.5]}, "hours": merchant.hours}


async def test_the_catalogue_next_change_counts_what_no_answer_shows_yet(db_client: Any) -> None:
    """Offers and festivals beginning or ending, and scheduled campaigns, by one indexed query each."""
    db = db_client[unique_db("boundaries")]
    now = datetime(2027, 2, 6, 13, 59, 30, tzinfo=UTC)
    assert await boundaries.next_change(db, now) is None
    minutes = [now + timedelta(minutes=m) for m in range(12)]
    await db.festivals.insert_one({"_id": "f", "starts_at": minutes[9], "ends_at": minutes[11]})
    assert await boundaries.next_change(db, now) == minutes[9].timestamp()
    await db.festivals.update_one({"_id": "f"}, {"$set": {"starts_at": now - timedelta(days=1)}})
    assert await boundaries.next_change(db, now) == minutes[11].timestamp()
    await db.offers.insert_one({"_id": "o", "valid_from": minutes[7], "valid_until": minutes[10],
                                "until_key": until_key(minutes[10], "o")})
    assert await boundaries.next_change(db, now) == minutes[7].timestamp()
    assert await boundaries.next_change(db, minutes[7]) == minutes[10].timestamp()  # strictly after
    await db.push_campaigns.insert_one({"_id": "c", "status": "cancelled", "send_at_ts": minutes[2].timestamp()})
    assert await boundaries.next_change(db, now) == minutes[7].timestamp()  # cancelled: never enters the inbox
    await db.push_campaigns.insert_one({"_id": "s", "status": "sending", "send_at_ts": minutes[3].timestamp()})
    assert await boundaries.next_change(db, now) == minutes[3].timestamp()
    await db_client.drop_database(db.name)


async def test_entries_filled_together_end_minutes_apart(one_app: tuple[str, CommandCounter],
                                                         settings_here: Any) -> None:
    """A warm-up fills many quiet answers in one go: the jitter on the cap spreads their ends over minutes (18
    ends drawn over JITTER_MS all fall within 100 s about once in a million runs; under a 90 s jitter, always)."""
    url, _ = one_app
    now = datetime.now(UTC)
    to_midnight = datetime.combine((now + timedelta(hours=8)).date() + timedelta(days=1), datetime.min.time(),
                                   UTC) - timedelta(hours=8) - now
    if to_midnight < timedelta(milliseconds=MAX_TTL_MS + 60_000):
        pytest.skip("Shenzhen midnight is within the cap: it ends every entry, as it must")
    client = aioredis.from_url(settings_here.redis_url)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            topic_lists = [list(p) for n in (1, 2) for p in itertools.permutations(["OFFERS", "FESTIVALS",
                                                                                     "CROWD_ALERTS"], n)]
            for locale, topics in itertools.product(("zh-CN", "en"), topic_lists):
                answer = await http.get("/graphql", params=persisted(
                    "Inbox", districts=[to_global("District", DISTRICT)], topics=topics, locale=locale))
                assert answer.headers["x-cache"] == "miss", answer.text
        ttls = [int(await client.pttl(key)) for key in await client.keys(f"sq:pc:{settings_here.mongodb_db}:e:*")]
    finally:
        await client.aclose()
    assert len(ttls) == 18 and all(MAX_TTL_MS - JITTER_MS - 60_000 < t <= MAX_TTL_MS for t in ttls), ttls
    assert max(ttls) - min(ttls) > 100_000, sorted(ttls)


async def test_a_quiet_entry_lives_past_the_minute_and_ends_when_an_offer_or_a_campaign_arrives(
        settings_here: Any, db_client: Any) -> None:
    """Through the real app and Redis: an entry's TTL is the cap when nothing turns soon, and ends exactly when
    an offer of the merchant becomes valid (not yet on the page) or a scheduled campaign reaches the inbox."""
    db = db_client[settings_here.mongodb_db]
    client = aioredis.from_url(settings_here.redis_url)
    entries = f"sq:pc:{settings_here.mongodb_db}:e:*"

    async def ttl_of(http: httpx.AsyncClient, params: dict[str, str], until: datetime | None = None) -> tuple[
            int, httpx.Response, float]:
        """The entry's TTL, the answer, and (with `until`) how long there was from the moment it was asked."""
        for key in await client.keys(entries):
            await client.delete(key)
        asked = datetime.now(UTC)
        answer = await http.get("/graphql", params=params)
        assert answer.headers["x-cache"] == "miss", answer.text
        (key,) = await client.keys(entries)
        return int(await client.pttl(key)), answer, ((until or asked) - asked).total_seconds() * 1000

    try:
        async with serve(settings_here) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            headers = await _tokens(db)
            inbox = persisted("Inbox", districts=[to_global("District", DISTRICT)], topics=["OFFERS"], locale="zh-CN")
            now = datetime.now(UTC)
            to_midnight = (datetime.combine((now + timedelta(hours=8)).date() + timedelta(days=1),
                                            datetime.min.time(), UTC) - timedelta(hours=8) - now)
            quiet = min(MAX_TTL_MS - JITTER_MS, int(to_midnight.total_seconds() * 1000)) - 5_000
            assert (await ttl_of(http, inbox))[0] > quiet
            # an offer of the shop beginning in 5 minutes: not on its page yet, which must end then
            starts = (now + timedelta(minutes=5)).replace(second=0, microsecond=0)
            made = (await gql(http, "mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) "
                              "{ %s } }" % OFFER_FIELDS, {"m": to_global("Merchant", SHOP), "i": {
                                  **offer_input("五分钟后"), "validFrom": starts.isoformat()}},
                              headers["shop"]))["data"]["createOffer"]
            assert made["errors"] == [], made
            published = await gql(http, 'mutation { publishOffer(id: "%s", version: 1) { %s } }'
                                  % (made["offer"]["id"], OFFER_FIELDS), headers=headers["shop"])
            assert published["data"]["publishOffer"]["errors"] == [], published
            ttl, _, left = await ttl_of(http, persisted("Festivals", locale="zh-CN"), starts)
            assert left - 5_000 < ttl <= left, (ttl, left)
            ttl, page, left = await ttl_of(http, merchant_page(), starts)
            assert "五分钟后" not in page.text and ttl <= left
            # a campaign scheduled in 3 minutes enters the inbox then
            sends = (datetime.now(UTC) + timedelta(minutes=3)).replace(microsecond=0)
            created = await gql(http, """mutation ($input: CampaignInput!) { createCampaign(input: $input) {
                campaign { id } errors { code } } }""", {"input": {
                "title": {"zhCN": "三分钟后"}, "body": {"zhCN": "周六"}, "sendAt": sends.isoformat(),
                "districtIds": [to_global("District", DISTRICT)], "topics": ["OFFERS"]}}, headers["ops"])
            assert created["data"]["createCampaign"]["errors"] == [], created
            ttl, page, left = await ttl_of(http, inbox, sends)
            assert "三分钟后" not in page.text and left - 5_000 < ttl <= left, (ttl, left)
            # open-now decides which places are listed: the next quarter-hour
            quarter = datetime.fromtimestamp((datetime.now(UTC).timestamp() // 900 + 1) * 900, UTC)
            ttl, _, left = await ttl_of(http, persisted("Merchants", filter={"openNow": True}, locale="zh-CN"), quarter)
            assert ttl <= left
    finally:
        await client.aclose()


async def _tokens(db: Any) -> dict[str, dict[str, str]]:
    merchant = await make_account(db, "merchant", merchant_ids=[SHOP])
    operator = await make_account(db, "operator", district_ids=[DISTRICT])
    shop = await accounts.create_token(db, merchant.actor(), "pos", ["offers", "products", "profile"])
    ops = await accounts.create_token(db, operator.actor(), "ops", ["districts", "festivals", "profile"])
    return {"shop": {"authorization": f"Bearer {shop.secret}"}, "ops": {"authorization": f"Bearer {ops.secret}"}}


OFFER_FIELDS = "offer { id version status title } errors { field code message }"


def offer_input(title: str, stock: int | None = None) -> dict[str, Any]:
    return {"title": {"zhCN": title}, "kind": "PERCENT_OFF", "percentOff": 10,
            "validFrom": (NOW - timedelta(days=1)).isoformat(), "validUntil": (NOW + timedelta(days=30)).isoformat(),
            "stock": stock}


async def _lists_showing_the_shop(http: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    """Near me from the shop's grid point, and search's '查看全部' for a word of its name: both list it."""
    shop = (await gql(http, '{ merchant(id: "%s") { location { lat lng } } }'
                      % to_global("Merchant", SHOP)))["data"]["merchant"]["location"]
    grid = {"lat": round(shop["lat"] * 500) / 500, "lng": round(shop["lng"] * 500) / 500, "radiusMeters": 5000}
    near = persisted("Merchants", filter={"near": grid}, first=20, locale="zh-CN")
    search_all = persisted("SearchAll", query="手机城", first=20, locale="zh-CN")
    for params in (near, search_all):
        edges = (await http.get("/graphql", params=params)).json()["data"]["merchants"]["edges"]
        assert to_global("Merchant", SHOP) in {e["node"]["id"] for e in edges}, params
    return near, search_all


async def test_an_offer_edit_outdates_only_the_answers_that_can_show_it(settings_here: Any, db_client: Any) -> None:
    """An offer's write bumps its merchant, its district and the city-wide lists of offers: the lists that show
    its merchant miss, while a search, another shop's page and the lists that do not show it stay hits."""
    async with serve(settings_here) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        headers = await _tokens(db_client[settings_here.mongodb_db])
        near, search_all = await _lists_showing_the_shop(http)
        other_shop = persisted("MerchantPage", id=to_global("Merchant", "hqb-night-noodles"), locale="zh-CN")
        noodles = persisted("SearchAll", query="夜宵", first=20, locale="zh-CN")
        shown = {"near": near, "search all": search_all, "shop page": merchant_page(),
                 "district screen": district_screen(), "festivals": persisted("Festivals", locale="zh-CN"),
                 "home": persisted("Home", locale="zh-CN")}
        kept = {"other shop page": other_shop, "search": persisted("Search", query="手机", locale="zh-CN"),
                "search all without the shop": noodles, "products": persisted("Products", locale="zh-CN"),
                "settings": persisted("Settings", locale="zh-CN")}
        listed = (await http.get("/graphql", params=noodles)).json()["data"]["merchants"]["edges"]
        assert [e["node"]["id"] for e in listed] == [to_global("Merchant", "hqb-night-noodles")]
        for name, params in {**shown, **kept}.items():
            await http.get("/graphql", params=params)
            assert (await http.get("/graphql", params=params)).headers["x-cache"] == "hit", name
        made = (await gql(http, "mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) "
                          "{ %s } }" % OFFER_FIELDS, {"m": to_global("Merchant", SHOP), "i": offer_input("只此一家")},
                          headers["shop"]))["data"]["createOffer"]
        published = (await gql(http, 'mutation { publishOffer(id: "%s", version: 1) { %s } }'
                               % (made["offer"]["id"], OFFER_FIELDS), headers=headers["shop"]))["data"]["publishOffer"]
        assert published["errors"] == [], published
        after = {name: await http.get("/graphql", params=params) for name, params in {**shown, **kept}.items()}
        assert {n: r.headers["x-cache"] for n, r in after.items()} == {
            **{n: "miss" for n in shown}, **{n: "hit" for n in kept}}
        for name in ("near", "search all", "shop page"):
            assert "只此一家" in json.dumps(after[name].json(), ensure_ascii=False), name


async def test_writes_are_seen_on_the_next_read_through_either_web_process(
        settings_here: Any, db_client: Any) -> None:
    """Randomized: hundreds of writes and reads interleaved across two app instances; 0 stale reads."""
    rng = random.Random(13)
    async with serve(settings_here) as url_a, serve(settings_here, load_content=False) as url_b, \
            httpx.AsyncClient(base_url=url_a, timeout=30) as a, httpx.AsyncClient(base_url=url_b, timeout=30) as b:
        db = db_client[settings_here.mongodb_db]
        headers = await _tokens(db)
        offers: dict[str, dict[str, Any]] = {}  # global id → {version, title, published}
        for n in range(4):
            made = (await gql(a, "mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) "
                              "{ %s } }" % OFFER_FIELDS, {"m": to_global("Merchant", SHOP), "i": offer_input(f"o{n}")},
                              headers["shop"]))["data"]["createOffer"]["offer"]
            published = (await gql(b, 'mutation { publishOffer(id: "%s", version: 1) { %s } }'
                                   % (made["id"], OFFER_FIELDS), headers=headers["shop"]))["data"]["publishOffer"]
            offers[made["id"]] = {"version": published["offer"]["version"], "title": f"o{n}", "published": True}
        area = (await gql(a, '{ node(id: "%s") { ... on Area { capacity version } } }' % to_global("Area", AREA)))
        capacity = {"value": area["data"]["node"]["capacity"], "version": area["data"]["node"]["version"]}
        shop_gid = to_global("Merchant", SHOP)
        near, search_all = await _lists_showing_the_shop(a)
        stale: list[str] = []
        writes = reads = 0
        for step in range(400):
            client = rng.choice((a, b))
            if rng.random() < 0.35:
                writes += 1
                kind = rng.choice(("title", "stock", "toggle", "capacity"))
                if kind == "capacity":
                    value = rng.randrange(100, 100_000)
                    done = (await gql(client, 'mutation { setAreaCapacity(id: "%s", version: %d, capacity: %d) '
                                      '{ area { version } errors { code } } }'
                                      % (to_global("Area", AREA), capacity["version"], value),
                                      headers=headers["ops"]))["data"]["setAreaCapacity"]
                    assert done["errors"] == [], done
                    capacity = {"value": value, "version": done["area"]["version"]}
                    continue
                gid = rng.choice(list(offers))
                state = offers[gid]
                if kind == "toggle":
                    action = "withdrawOffer" if state["published"] else "publishOffer"
                    done = (await gql(client, 'mutation { %s(id: "%s", version: %d) { %s } }'
                                      % (action, gid, state["version"], OFFER_FIELDS),
                                      headers=headers["shop"]))["data"][action]
                    state["published"] = not state["published"]
                else:
                    title = f"{state['title'].split('-')[0]}-{step}"
                    done = (await gql(client, "mutation($id: ID!, $v: Int!, $i: OfferInput!) { updateOffer(id: $id, "
                                      "version: $v, input: $i) { %s } }" % OFFER_FIELDS,
                                      {"id": gid, "v": state["version"],
                                       "i": offer_input(title, 0 if kind == "stock" else 50)},
                                      headers["shop"]))["data"]["updateOffer"]
                    state["title"] = title
                assert done["errors"] == [], done
                state["version"] = done["offer"]["version"]
                continue
            reads += 1
            expected = {g: s["title"] for g, s in offers.items() if s["published"]}
            roll = rng.random()
            if roll < 0.3:
                # the lists that show the shop with its offers: near me from its grid point and '查看全部' of a
                # search that finds it (tagged with the merchants they show, not with every write)
                params = near if roll < 0.15 else search_all
                edges = (await client.get("/graphql", params=params)).json()["data"]["merchants"]["edges"]
                listed = {o["id"]: o["title"] for e in edges if e["node"]["id"] == shop_gid
                          for o in e["node"]["offers"]}
                if {g: t for g, t in listed.items() if g in offers} != expected:
                    stale.append(f"step {step} {'near' if roll < 0.15 else 'search'} list: {listed} != {expected}")
            elif roll < 0.65:
                page = (await client.get("/graphql", params=merchant_page())).json()["data"]["merchant"]
                seen = {o["id"]: o["title"] for o in page["offers"]}
                shown = {g: t for g, t in seen.items() if g in offers}
                if shown != expected:
                    stale.append(f"step {step} merchant page: {shown} != {expected}")
            else:
                screen = (await client.get("/graphql", params=district_screen())).json()["data"]["district"]
                areas = {x["id"]: x["capacity"] for x in screen["areas"]}
                if areas[to_global("Area", AREA)] != capacity["value"]:
                    stale.append(f"step {step} district screen: capacity {areas} != {capacity['value']}")
                titles = {e["node"]["id"]: e["node"]["title"] for e in screen["offers"]["edges"]}
                if {g: t for g, t in titles.items() if g in offers} != expected:
                    stale.append(f"step {step} district screen offers: {titles} != {expected}")
        assert writes > 100 and reads > 200
        assert stale == []
        # the lists were answered from the cache between edits, and showed the shop each time
        assert (await b.get("/graphql", params=near)).headers["x-cache"] == "hit"
        # and the cache was used: an unchanged page is a hit on the other process
        await a.get("/graphql", params=merchant_page("en"))
        assert (await b.get("/graphql", params=merchant_page("en"))).headers["x-cache"] == "hit"


async def test_redis_stopping_sends_reads_to_mongodb_and_its_return_brings_the_cache_back(
        settings_here: Any, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = replace(settings_here, redis_url=redis.url)
    try:
        async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.get("/graphql", params=merchant_page())
            assert (await http.get("/graphql", params=merchant_page())).headers["x-cache"] == "hit"
            redis.stop()
            for _ in range(3):
                down = await http.get("/graphql", params=merchant_page())
                assert down.status_code == 200 and down.json()["data"]["merchant"]["name"]
                assert down.headers.get("x-cache") != "hit"
            redis.start()

            async def cached_again() -> bool:
                await http.get("/graphql", params=merchant_page())
                return (await http.get("/graphql", params=merchant_page())).headers.get("x-cache") == "hit"

            from tests.ops.servers import eventually
            assert await eventually(cached_again, within=30, every=0.5)
    finally:
        redis.stop()


async def test_cycling_variables_cannot_fill_redis(settings_here: Any, tmp_path: Path) -> None:
    """maxmemory + volatile-lru (as the embedded Redis runs): entries are evicted, the tag versions stay."""
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    client = aioredis.from_url(redis.url)
    try:
        # 600 searches from one address cost more than a minute's GraphQL budget (~1.6M of 600k points): the
        # budget is off here, since this test is about the cache's memory, not about who may ask
        settings = replace(settings_here, redis_url=redis.url, rate_limit_graphql_cost=0)
        async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.get("/graphql", params=merchant_page())
            # room for Redis's own client buffers, which grow by tens of KB under a stream of stores (seen: 30 KB
            # to 111 KB) and cannot be evicted: with less, the store after evicting every entry meets OOM
            cap = int((await client.info("memory"))["used_memory"]) + 80_000
            await client.config_set("maxmemory", str(cap))
            await client.config_set("maxmemory-policy", "volatile-lru")
            for n in range(600):
                response = await http.get("/graphql", params=persisted("Search", query=f"华强北{n}", locale="en"))
                assert response.status_code == 200
            info, memory = await client.info("stats"), await client.info("memory")
            assert int(info["evicted_keys"]) > 0
            assert int(memory["used_memory"]) <= cap + 16_000
            assert await client.hget(f"sq:pc:{settings.mongodb_db}:tags", "_gen") is not None
            await http.get("/graphql", params=merchant_page())
            assert (await http.get("/graphql", params=merchant_page())).headers["x-cache"] == "hit"
    finally:
        await client.aclose()
        redis.stop()


async def test_a_district_page_miss_costs_at_most_six_commands(one_app: tuple[str, CommandCounter]) -> None:
    """Category names, current festivals and the merchant count come from the process memo under the versions
    the miss saw; the page's own district, merchants, areas, offers and products are read (the offers as two
    point reads, the merchants' lists then the offers, which a larger city does not make dearer)."""
    url, counter = one_app
    page = persisted("DistrictPage", id=to_global("District", DISTRICT), locale="zh-CN")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        warm = await http.get("/graphql", params=page)
        assert warm.headers["x-cache"] == "miss"
        counter.targets.clear()
        counter.enabled = True
        other = await http.get("/graphql", params={**page, "variables": page["variables"].replace("zh-CN", "en")})
        counter.enabled = False
    assert other.headers["x-cache"] == "miss"
    body = other.json()["data"]["district"]
    assert body["merchants"]["totalCount"] == len(body["merchants"]["edges"]) > 0
    assert body["merchants"]["edges"][0]["node"]["categories"][0]["name"]
    assert len(counter.targets) <= 6, counter.targets


async def test_a_content_load_outdates_every_answer_and_a_cold_process_reads_the_shared_cache(
        settings_here: Any, db_client: Any) -> None:
    async with serve(settings_here) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        db = db_client[settings_here.mongodb_db]
        await http.get("/graphql", params=merchant_page())
        before = await http.get("/graphql", params=merchant_page())
        assert before.headers["x-cache"] == "hit"
        # the stored shop differs from its content file and the manifest no longer matches the files (as after an
        # edit of the files): the next load rewrites the shop
        await db.merchants.update_one({"_id": SHOP}, {"$set": {"name.zh-CN": "改过的名字", "content_hash": "edited"}})
        await db.content_manifest.update_one({"_id": "content"}, {"$set": {"digest": "files edited"}})
        assert (await http.get("/graphql", params=merchant_page())).content == before.content  # not a write path
        async with serve(settings_here) as cold_url, httpx.AsyncClient(base_url=cold_url, timeout=30) as cold:
            after = await http.get("/graphql", params=merchant_page())
            assert after.headers["x-cache"] == "miss" and after.json() == before.json()
            shared = await cold.get("/graphql", params=merchant_page())
            assert shared.headers["x-cache"] == "hit" and shared.content == after.content


async def test_the_second_editions_reads_are_cached_too(one_app: tuple[str, CommandCounter]) -> None:
    """Popular times (a history read per area), calmer places, "查看全部" search pages and settings."""
    url, _ = one_app
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    reads = [persisted("AreaPopular", id=to_global("Area", AREA), date=today, locale="zh-CN"),
             persisted("DistrictPopular", id=to_global("District", DISTRICT), date=today, locale="en"),
             persisted("CalmerAlternatives", id=to_global("Area", AREA), locale="zh-CN"),
             persisted("SearchAll", query="手机", first=20, locale="zh-CN"),
             persisted("Settings", locale="en")]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for params in reads:
            first = await http.get("/graphql", params=params)
            assert first.status_code == 200 and "errors" not in first.json(), first.text
            again = await http.get("/graphql", params=params)
            assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit"), params
            assert again.content == first.content
        # a day that is not a date is GraphQL's to refuse, never a cached answer
        bad = await http.get("/graphql", params=persisted("AreaPopular", id=to_global("Area", AREA), date="soon"))
        assert bad.headers.get("x-cache") != "hit" and bad.json()["errors"]
