"""Coupons over GraphQL: a device claims, the merchant redeems once, everyone else is refused with a code."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from server.domain.accounts import service as accounts
from server.domain.coupons.models import display, new_code, normalise
from server.observability.metrics import COUPON_ATTEMPTS
from server.plumbing.persisted import allow_list, digest
from tests.api.burst import burst
from tests.conftest import RunningApp, gql
from tests.support import make_account, published_offer

SHOP_X, SHOP_Y = "hqb-huaqiang-digital-phone-mall", "hqb-xinpin-components"
CLAIM = """mutation($id: ID!, $d: String!) { claimOffer(id: $id, deviceKey: $d) {
  coupon { code qrSvg state expiresAt offer { id stock } } errors { field code message } } }"""
REDEEM = """mutation($c: String!) { redeemCoupon(code: $c, locale: "en") {
  coupon { code state redeemedAt offer { id } }
  errors { field code message reason redeemedAt redeemedWhere retryAfter } } }"""
MINE = "query($d: String!) { myCoupons(deviceKey: $d) { code state offer { id } } }"


def device() -> str:
    return str(uuid.uuid4())


class Shop:
    def __init__(self, db: Any, admin: Any, token: str, other_token: str) -> None:
        self.db, self.admin = db, admin
        self.bearer = {"authorization": f"Bearer {token}"}
        self.other = {"authorization": f"Bearer {other_token}"}


@pytest.fixture(scope="module")
async def shop(db_client: Any, app_server: RunningApp) -> Shop:
    db = db_client[app_server.db_name]
    admin = await make_account(db, "admin")
    mine = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    theirs = await make_account(db, "merchant", merchant_ids=[SHOP_Y])
    token = await accounts.create_token(db, mine.actor(), "pos", ["offers"])
    other = await accounts.create_token(db, theirs.actor(), "pos", ["offers"])
    return Shop(db, admin, token.secret, other.secret)


async def claim(http: httpx.AsyncClient, offer_id: str, key: str) -> dict[str, Any]:
    body = await gql(http, CLAIM, {"id": to_global("Offer", offer_id), "d": key})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["claimOffer"]
    return result


async def redeem(http: httpx.AsyncClient, code: str, headers: dict[str, str]) -> dict[str, Any]:
    body = await gql(http, REDEEM, {"c": code}, headers=headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["redeemCoupon"]
    return result


async def test_claim_list_and_redeem_once_with_audit_and_counters(shop: Shop, http: httpx.AsyncClient) -> None:
    offer = await published_offer(shop.db, shop.admin, SHOP_X, stock=5)
    key = device()
    claimed = await claim(http, offer.id, key)
    assert claimed["errors"] == []
    coupon = claimed["coupon"]
    assert coupon["state"] == "CLAIMED" and coupon["qrSvg"].startswith("<svg")
    assert len(normalise(coupon["code"])) == 10
    assert coupon["offer"]["stock"] == 4
    assert coupon["expiresAt"][:16] == offer.valid_until.isoformat()[:16], "a code expires with its offer"

    mine = (await gql(http, MINE, {"d": key}))["data"]["myCoupons"]
    assert [c["code"] for c in mine] == [coupon["code"]]
    assert (await gql(http, MINE, {"d": device()}))["data"]["myCoupons"] == []

    typed = coupon["code"].lower().replace("-", " ")  # as a cashier might type it
    done = await redeem(http, typed, shop.bearer)
    assert done["errors"] == [] and done["coupon"]["state"] == "REDEEMED"
    again = await redeem(http, coupon["code"], shop.bearer)
    [problem] = again["errors"]
    assert problem["code"] == "ALREADY_REDEEMED" and problem["redeemedAt"] == done["coupon"]["redeemedAt"]
    assert problem["redeemedWhere"] == "Huaqiang Digital Phone Mall" or problem["redeemedWhere"]
    assert problem["redeemedWhere"] in problem["message"]

    doc = await shop.db.offers.find_one({"_id": offer.id})
    assert (doc["stock"], doc["claims"], doc["redemptions"]) == (4, 1, 1)
    [day] = [d async for d in shop.db.offer_stats_daily.find({"offer_id": offer.id})]
    assert (day.get("claims"), day.get("redemptions")) == (1, 1)
    entries = [e async for e in shop.db.audit.find({"action": "coupon.redeem", "target_id": normalise(typed)})]
    assert len(entries) == 1 and entries[0]["after"]["state"] == "redeemed"
    assert (await gql(http, MINE, {"d": key}))["data"]["myCoupons"][0]["state"] == "REDEEMED"


async def test_one_claim_per_device_unless_the_offer_allows_more(shop: Shop, http: httpx.AsyncClient) -> None:
    single = await published_offer(shop.db, shop.admin, SHOP_X)
    key = device()
    assert (await claim(http, single.id, key))["errors"] == []
    refused = await claim(http, single.id, key)
    assert [e["code"] for e in refused["errors"]] == ["LIMIT_REACHED"] and refused["coupon"] is None
    triple = await published_offer(shop.db, shop.admin, SHOP_X, per_device=3)
    answers = await asyncio.gather(*(claim(http, triple.id, key) for _ in range(6)))
    assert sorted(len(a["errors"]) for a in answers) == [0, 0, 0, 1, 1, 1]
    assert await shop.db.coupons.count_documents({"offer_id": triple.id}) == 3
    bad = await claim(http, triple.id, "short")
    assert [e["code"] for e in bad["errors"]] == ["INVALID_DEVICE"]


async def test_stock_10_and_30_concurrent_claims_from_processes(shop: Shop, app_server: RunningApp) -> None:
    offer = await published_offer(shop.db, shop.admin, SHOP_X, stock=10)
    bodies = [{"query": CLAIM, "variables": {"id": to_global("Offer", offer.id), "d": device()}} for _ in range(30)]
    answers = await asyncio.to_thread(burst, app_server.url, bodies, {}, 6)
    codes = sorted(a["data"]["claimOffer"]["errors"][0]["code"] if a["data"]["claimOffer"]["errors"] else "OK"
                   for a in answers)
    doc = await shop.db.offers.find_one({"_id": offer.id})
    print(f"\n30 claims from 6 processes on stock 10: {codes.count('OK')} claimed, "
          f"{codes.count('OUT_OF_STOCK')} OUT_OF_STOCK, stock now {doc['stock']}")
    assert codes == ["OK"] * 10 + ["OUT_OF_STOCK"] * 20, codes
    assert doc["stock"] == 0 and doc["claims"] == 10
    assert await shop.db.coupons.count_documents({"offer_id": offer.id}) == 10


async def test_50_concurrent_redemptions_from_processes_exactly_one_wins(shop: Shop, app_server: RunningApp,
                                                                         http: httpx.AsyncClient) -> None:
    offer = await published_offer(shop.db, shop.admin, SHOP_X)
    code = (await claim(http, offer.id, device()))["coupon"]["code"]
    bodies = [{"query": REDEEM, "variables": {"c": code}}] * 50
    answers = await asyncio.to_thread(burst, app_server.url, bodies, shop.bearer, 10)
    payloads = [a["data"]["redeemCoupon"] for a in answers]
    winners = [p for p in payloads if not p["errors"]]
    losers = [p["errors"][0] for p in payloads if p["errors"]]
    print(f"\n50 redemptions of one code from 10 processes: {len(winners)} redeemed, "
          f"{sum(e['code'] == 'ALREADY_REDEEMED' for e in losers)} ALREADY_REDEEMED")
    assert len(winners) == 1
    assert len(losers) == 49 and {e["code"] for e in losers} == {"ALREADY_REDEEMED"}
    assert {e["redeemedAt"] for e in losers} == {winners[0]["coupon"]["redeemedAt"]}
    assert all(e["redeemedWhere"] for e in losers)
    assert await shop.db.audit.count_documents({"action": "coupon.redeem", "target_id": normalise(code)}) == 1
    assert (await shop.db.offers.find_one({"_id": offer.id}))["redemptions"] == 1


async def test_refusals_are_coded_counted_and_change_nothing(shop: Shop, http: httpx.AsyncClient) -> None:
    offer = await published_offer(shop.db, shop.admin, SHOP_X)
    code = (await claim(http, offer.id, device()))["coupon"]["code"]
    before = await shop.db.coupons.find_one({"_id": normalise(code)})
    invalid = COUPON_ATTEMPTS.labels(outcome="INVALID_CODE")
    counted = invalid._value.get()
    here = {"x-forwarded-for": fresh_address()}
    theirs = await redeem(http, code, {**shop.other, **here})
    assert [e["code"] for e in theirs["errors"]] == ["NOT_YOUR_OFFER"]
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    swapped = normalise(code)
    swapped = swapped[1] + swapped[0] + swapped[2:] if swapped[0] != swapped[1] else swapped[:2] + "--"
    cases = {"NOPE": "MALFORMED", typo: "CHECK_DIGIT", display(new_code()): "UNKNOWN"}
    if "--" not in swapped:
        cases[swapped] = "CHECK_DIGIT"
    for typed, reason in cases.items():
        [e] = (await redeem(http, typed, {**shop.bearer, **here}))["errors"]
        assert (e["code"], e["reason"], e["field"]) == ("INVALID_CODE", reason, "code"), (typed, e)
        assert e["message"]
    assert invalid._value.get() == counted + len(cases)
    anonymous = await redeem(http, code, here)
    assert [e["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]
    assert await shop.db.coupons.find_one({"_id": normalise(code)}) == before


async def test_expired_code(shop: Shop, http: httpx.AsyncClient) -> None:
    offer = await published_offer(shop.db, shop.admin, SHOP_X)
    code = (await claim(http, offer.id, device()))["coupon"]["code"]
    # the offer ended (its validity moved into the past, as time would)
    doc = await shop.db.coupons.find_one({"_id": normalise(code)})
    await shop.db.coupons.replace_one({"_id": doc["_id"]}, {**doc, "expires_at": offer.valid_from})
    [e] = (await redeem(http, code, shop.bearer))["errors"]
    assert e["code"] == "COUPON_EXPIRED" and "expired" in e["message"]


def fresh_address() -> str:
    """An address of its own, so counts from other tests (or runs, in the same minute) do not mix in."""
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


async def test_guessing_codes_is_rate_limited(shop: Shop, app_server: RunningApp, http: httpx.AsyncClient) -> None:
    guesser = await make_account(shop.db, "merchant", merchant_ids=[SHOP_X])
    token = await accounts.create_token(shop.db, guesser.actor(), "pos", ["offers"])
    headers = {"authorization": f"Bearer {token.secret}", "x-forwarded-for": fresh_address()}
    limit = app_server.settings.rate_limit_coupon_misses
    seen: list[str] = []
    # Fixed windows: `limit` misses in one window, then refused; a window boundary on the way starts a new count.
    while "RATE_LIMITED" not in seen and len(seen) <= 2 * limit:
        [e] = (await redeem(http, display(new_code()), headers))["errors"]
        seen.append(e["code"])
    assert seen[-1] == "RATE_LIMITED" and set(seen[:-1]) == {"INVALID_CODE"}
    assert limit <= len(seen) - 1 <= 2 * limit
    [e] = (await redeem(http, display(new_code()), {**headers, "x-forwarded-for": fresh_address()}))["errors"]
    assert e["code"] == "RATE_LIMITED" and e["retryAfter"] > 0, "the account is limited on any network"


async def test_the_last_coupon_claimed_shows_sold_out_through_the_public_cache(
        shop: Shop, http: httpx.AsyncClient) -> None:
    offer = await published_offer(shop.db, shop.admin, SHOP_X, stock=1)
    [text] = [t for t in allow_list().values() if t.startswith("query MerchantPage(")]
    params = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest(text)}}),
              "variables": json.dumps({"id": to_global("Merchant", SHOP_X), "locale": "zh-CN"})}

    def stock_in(response: httpx.Response) -> int:
        [found] = [o["stock"] for o in response.json()["data"]["merchant"]["offers"]
                   if o["id"] == to_global("Offer", offer.id)]
        return int(found)

    await http.get("/graphql", params=params)
    cached = await http.get("/graphql", params=params)
    assert cached.headers["x-cache"] == "hit" and stock_in(cached) == 1
    assert (await claim(http, offer.id, device()))["errors"] == []
    after = await http.get("/graphql", params=params)
    assert after.headers["x-cache"] == "miss" and stock_in(after) == 0
    refused = await claim(http, offer.id, device())
    assert [e["code"] for e in refused["errors"]] == ["OUT_OF_STOCK"]
