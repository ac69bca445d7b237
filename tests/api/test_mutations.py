"""Mutations as an integration (a merchant's POS) uses them, with a Bearer API token."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from server.api.ids import to_global
from server.domain.accounts import service as accounts
from server.domain.messages import translate
from tests.conftest import CommandCounter, RunningApp, gql, unique_db
from tests.support import PASSWORD, make_account

SHOP = "hqb-huaqiang-digital-phone-mall"
NOW = datetime.now(UTC)
CREATE = """mutation($m: ID!, $i: OfferInput!) { createOffer(merchantId: $m, input: $i) {
  offer { id slug version status title } errors { field code message } } }"""
UPDATE = """mutation($id: ID!, $v: Int!, $i: OfferInput!) { updateOffer(id: $id, version: $v, input: $i) {
  offer { version title couponCode } errors { field code message } } }"""


@pytest.fixture(scope="module")
async def pos(db_client: Any, app_server: RunningApp) -> dict[str, Any]:
    db = db_client[app_server.db_name]
    merchant = await make_account(db, "merchant", merchant_ids=[SHOP])
    full = await accounts.create_token(db, merchant.actor(), "pos", ["offers", "products", "profile"])
    narrow = await accounts.create_token(db, merchant.actor(), "catalogue", ["products"])
    return {"db": db, "actor": merchant.actor(), "headers": {"authorization": f"Bearer {full.secret}"},
            "narrow": {"authorization": f"Bearer {narrow.secret}"}, "narrow_id": narrow.id}


def offer(title: str = "开学季手机壳买一送一", **extra: Any) -> dict[str, Any]:
    return {"title": {"zhCN": title, "en": "Buy one case, get one free"}, "kind": "GIFT",
            "validFrom": NOW.isoformat(), "validUntil": (NOW + timedelta(days=5)).isoformat(), **extra}


async def create(http: httpx.AsyncClient, pos: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = await gql(http, CREATE, {"m": to_global("Merchant", SHOP), "i": offer(**extra)}, pos["headers"])
    result: dict[str, Any] = body["data"]["createOffer"]
    return result


async def public_offer_ids(http: httpx.AsyncClient) -> set[str]:
    body = await gql(http, '{ merchant(id: "%s") { offers { slug } } }' % to_global("Merchant", SHOP))
    return {o["slug"] for o in body["data"]["merchant"]["offers"]}


async def test_draft_publish_withdraw_is_what_shoppers_see(http: httpx.AsyncClient, pos: dict[str, Any]) -> None:
    created = await create(http, pos)
    assert created["errors"] == [] and created["offer"]["status"] == "DRAFT"
    slug, global_id = created["offer"]["slug"], created["offer"]["id"]
    assert slug not in await public_offer_ids(http)
    published = await gql(http, 'mutation { publishOffer(id: "%s", version: 1) { offer { status version } '
                                 'errors { code } } }' % global_id, headers=pos["headers"])
    assert published["data"]["publishOffer"]["offer"] == {"status": "PUBLISHED", "version": 2}
    assert slug in await public_offer_ids(http)
    withdrawn = await gql(http, 'mutation { withdrawOffer(id: "%s", version: 2) { errors { code } } }' % global_id,
                          headers=pos["headers"])
    assert withdrawn["data"]["withdrawOffer"]["errors"] == []
    assert slug not in await public_offer_ids(http)


async def test_second_of_two_concurrent_saves_gets_a_conflict(http: httpx.AsyncClient, pos: dict[str, Any]) -> None:
    created = await create(http, pos)
    global_id = created["offer"]["id"]
    first = await gql(http, UPDATE, {"id": global_id, "v": 1, "i": offer("第一位的标题", couponCode="FIRST1")},
                      pos["headers"])
    assert first["data"]["updateOffer"]["errors"] == []
    second = await gql(http, UPDATE, {"id": global_id, "v": 1, "i": offer("第二位的标题", couponCode="SECOND")},
                       pos["headers"])
    payload = second["data"]["updateOffer"]
    assert [e["code"] for e in payload["errors"]] == ["CONFLICT"]
    assert payload["offer"] == {"version": 2, "title": "第一位的标题", "couponCode": "FIRST1"}  # current values
    stored = await pos["db"].offers.find_one({"_id": created["offer"]["slug"]})
    assert stored["coupon_code"] == "FIRST1" and stored["version"] == 2
    assert isinstance(stored["valid_until"], datetime)  # an edited offer keeps real times, so it can go live
    await gql(http, 'mutation { publishOffer(id: "%s", version: 2) { errors { code } } }' % global_id,
              headers=pos["headers"])
    assert created["offer"]["slug"] in await public_offer_ids(http)


async def test_validation_errors_per_field_in_the_callers_language(http: httpx.AsyncClient,
                                                                   pos: dict[str, Any]) -> None:
    bad = {"title": {"en": "no Chinese title"}, "kind": "PERCENT_OFF", "percentOff": 95, "couponCode": "bad code",
           "validFrom": NOW.isoformat(), "validUntil": (NOW - timedelta(days=1)).isoformat()}
    before = await pos["db"].offers.count_documents({})
    for locale in ("zh-CN", "en"):
        expected = translate("required", locale)
        body = await gql(http, CREATE, {"m": to_global("Merchant", SHOP), "i": bad},
                         {**pos["headers"], "accept-language": locale})
        errors = {e["field"]: e for e in body["data"]["createOffer"]["errors"]}
        assert set(errors) == {"title.zh-CN", "percent_off", "coupon_code", "valid_until"}
        assert errors["title.zh-CN"]["message"] == expected
        assert errors["coupon_code"]["code"] == "coupon_format"
    assert await pos["db"].offers.count_documents({}) == before


async def test_token_scopes_and_revocation(http: httpx.AsyncClient, pos: dict[str, Any]) -> None:
    body = await gql(http, CREATE, {"m": to_global("Merchant", SHOP), "i": offer()}, pos["narrow"])
    assert [e["code"] for e in body["data"]["createOffer"]["errors"]] == ["FORBIDDEN"]
    await accounts.revoke_token(pos["db"], pos["actor"], pos["narrow_id"])
    body = await gql(http, CREATE, {"m": to_global("Merchant", SHOP), "i": offer()}, pos["narrow"])
    assert [e["code"] for e in body["data"]["createOffer"]["errors"]] == ["UNAUTHENTICATED"]


async def test_every_write_is_audited(http: httpx.AsyncClient, pos: dict[str, Any]) -> None:
    created = await create(http, pos, couponCode="AUDIT1")
    entries = [e async for e in pos["db"].audit.find({"target_id": created["offer"]["slug"]})]
    assert [e["action"] for e in entries] == ["offer.create"]
    entry = entries[0]
    assert entry["actor_id"] == pos["actor"].account_id and entry["before"] is None
    assert entry["after"]["coupon_code"] == "AUDIT1" and entry["district_ids"] == ["huaqiangbei"]


async def test_shoppers_views_and_saves_are_counted(http: httpx.AsyncClient, pos: dict[str, Any]) -> None:
    doc = await pos["db"].offers.find_one({"merchant_id": SHOP, "status": "published"})
    mutation = 'mutation { recordOfferInteraction(id: "%s", kind: VIEW) { code } }' % to_global("Offer", doc["_id"])
    assert (await gql(http, mutation))["data"]["recordOfferInteraction"] == []
    assert (await pos["db"].offers.find_one({"_id": doc["_id"]}))["views"] == doc.get("views", 0) + 1
    save = mutation.replace("VIEW", "SAVE")
    assert (await gql(http, save))["data"]["recordOfferInteraction"] == []
    assert (await gql(http, save))["data"]["recordOfferInteraction"] == []
    # the same interactions land in the offer's counters for its Shenzhen day, which dashboards chart
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    daily = await pos["db"].offer_stats_daily.find_one({"_id": f"{doc['_id']}:{day}"})
    assert daily is not None and daily["views"] >= 1 and daily["saves"] >= 2
    assert daily["merchant_id"] == SHOP and daily["day"] == day


async def test_a_view_is_one_write_to_the_offer_and_one_to_its_day(
        http: httpx.AsyncClient, pos: dict[str, Any], command_counter: CommandCounter) -> None:
    doc = await pos["db"].offers.find_one({"merchant_id": SHOP, "status": "published"})
    mutation = 'mutation { recordOfferInteraction(id: "%s", kind: VIEW) { code } }' % to_global("Offer", doc["_id"])
    command_counter.targets.clear()
    command_counter.enabled = True
    try:
        assert (await gql(http, mutation))["data"]["recordOfferInteraction"] == []
    finally:
        command_counter.enabled = False
    sent = [t for t in command_counter.targets if t[1] in ("offers", "offer_stats_daily")]
    assert sent == [("findAndModify", "offers"), ("update", "offer_stats_daily")], command_counter.targets


def test_create_admin_command_reads_the_password_from_stdin(mongo_url: str) -> None:
    from server.settings import ROOT

    env = {**os.environ, "MONGODB_URL": mongo_url, "MONGODB_DB": unique_db("cli_admin")}
    done = subprocess.run([sys.executable, "-m", "server", "accounts", "create-admin", "Boss@Example.com"], cwd=ROOT,
                          env=env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "admin boss@example.com created" in done.stdout
    short = subprocess.run([sys.executable, "-m", "server", "accounts", "create-admin", "x@example.com"], cwd=ROOT,
                           env=env, input="short\n", capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "password" in short.stderr
