"""A content reload that changes an offer's record updates the record's fields and keeps what shoppers and
merchants did since: the coupons claimed (the stock left) and the view, save, claim and redemption counters.

Runs the real app on its own database over a copy of tests/fixtures/content, so the start-up load is the
loader under test; the second start loads again because the files changed."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from server.api.ids import to_global
from server.content.loader import load_content, parse_content, planned_write, record_digest, replace_missed
from server.domain.accounts import service as accounts
from server.domain.content import repository as content_repository
from server.domain.offers import repository as offers
from server.domain.offers.models import SHOPPER_FIELDS, Offer
from server.settings import Settings
from tests.conftest import gql, unique_db
from tests.ops.servers import serve
from tests.support import make_account

FIXTURE = Path(__file__).parent.parent / "fixtures" / "content"
OFFER, SHOP = "phone-city-100-off", "hqb-phone-city"
CLAIM = """mutation($id: ID!, $d: String!) { claimOffer(id: $id, deviceKey: $d) {
  coupon { code offer { stock } } errors { code } } }"""
REDEEM = 'mutation($c: String!) { redeemCoupon(code: $c) { errors { code } } }'
SHOWN = 'query($id: ID!) { offer(id: $id, locale: "en") { title stock } }'
COUNTERS = ("stock", "views", "saves", "claims", "redemptions")


def edit_offer(content: Path, **fields: Any) -> None:
    path = content / "offers.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    [record] = [o for o in data["offers"] if o["id"] == OFFER]
    record.update(fields)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture
def settings(mongo_url: str, redis_url: str, tmp_path: Path) -> Settings:
    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    now = datetime.now(UTC).replace(microsecond=0)
    edit_offer(content, stock=10, valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30))
    return replace(Settings.from_env({}), mongodb_url=mongo_url, redis_url=redis_url,
                   mongodb_db=unique_db("reload"), var_dir=tmp_path / "var", content_dir=content)


async def counters(db: Any) -> tuple[int, ...]:
    doc = await db.offers.find_one({"_id": OFFER})
    return tuple(doc.get(name, 0) for name in COUNTERS)


async def test_a_changed_record_keeps_claimed_stock_and_counters(settings: Settings, db_client: Any) -> None:
    db = db_client[settings.mongodb_db]
    offer_id = to_global("Offer", OFFER)
    async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        codes = []
        for _ in range(3):
            claimed = (await gql(http, CLAIM, {"id": offer_id, "d": str(uuid.uuid4())}))["data"]["claimOffer"]
            assert claimed["errors"] == [], claimed
            codes.append(claimed["coupon"]["code"])
        assert claimed["coupon"]["offer"]["stock"] == 7
        merchant = await make_account(db, "merchant", merchant_ids=[SHOP])
        token = (await accounts.create_token(db, merchant.actor(), "pos", ["offers"])).secret
        redeemed = await gql(http, REDEEM, {"c": codes[0]}, {"authorization": f"Bearer {token}"})
        assert redeemed["data"]["redeemCoupon"]["errors"] == [], redeemed
        for kind in ("VIEW", "VIEW", "SAVE"):
            body = await gql(http, "mutation($id: ID!, $k: OfferInteraction!) { recordOfferInteraction("
                             "id: $id, kind: $k) { code } }", {"id": offer_id, "k": kind})
            assert body["data"]["recordOfferInteraction"] == [], body
    assert await counters(db) == (7, 2, 1, 3, 1)

    # the record's own fields change: the title is new, the 3 coupons claimed stay claimed
    edit_offer(settings.content_dir, title={"zh-CN": "立减120元", "en": "120 yuan off"}, amount_off_fen=12000)
    async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        shown = (await gql(http, SHOWN, {"id": offer_id}))["data"]["offer"]
        assert shown == {"title": "120 yuan off", "stock": 7}
        assert await counters(db) == (7, 2, 1, 3, 1)
        # the record gives out more coupons: those claimed come off the new number
        edit_offer(settings.content_dir, stock=20)
        assert (await load_content(db, settings.content_dir)).updated["offers"] == 1
        assert await counters(db) == (17, 2, 1, 3, 1)
        # fewer than were claimed: none left, never a negative stock
        edit_offer(settings.content_dir, stock=2)
        await load_content(db, settings.content_dir)
        assert await counters(db) == (0, 2, 1, 3, 1)
        refused = (await gql(http, CLAIM, {"id": offer_id, "d": str(uuid.uuid4())}))["data"]["claimOffer"]
        assert [e["code"] for e in refused["errors"]] == ["OUT_OF_STOCK"], refused
        # no stock in the record: as many as shoppers claim
        edit_offer(settings.content_dir, stock=None)
        await load_content(db, settings.content_dir)
        assert await counters(db) == (None, 2, 1, 3, 1)
        claimed = (await gql(http, CLAIM, {"id": offer_id, "d": str(uuid.uuid4())}))["data"]["claimOffer"]
        assert claimed["errors"] == [] and claimed["coupon"]["offer"]["stock"] is None, claimed


async def test_a_claim_between_the_loaders_read_and_write_is_kept(settings: Settings, db_client: Any) -> None:
    """The loader reads what is stored, then writes: a coupon claimed in between must not be undone."""
    db = db_client[settings.mongodb_db]
    await load_content(db, settings.content_dir)
    edit_offer(settings.content_dir, title={"zh-CN": "立减120元", "en": "120 yuan off"})
    records = parse_content(settings.content_dir)["offers"]
    read = await content_repository.sync_states(db, "offers", SHOPPER_FIELDS)
    [record] = [r for r in records if r["_id"] == OFFER]
    change = planned_write("offers", record, record_digest(record), read[OFFER])
    stored = Offer.from_doc(await db.offers.find_one({"_id": OFFER}))
    assert await offers.take_one(db, stored, datetime.now(UTC)) is not None  # a shopper claims one now
    await content_repository.write_changes(db, "offers", [change], [])
    doc = await db.offers.find_one({"_id": OFFER})
    assert (doc["title"]["en"], doc["claims"], doc["stock"]) == ("100 yuan off", 1, 9)  # nothing written over it
    await replace_missed(db, "offers", {OFFER: (record, record_digest(record))})
    doc = await db.offers.find_one({"_id": OFFER})
    assert (doc["title"]["en"], doc["claims"], doc["stock"]) == ("120 yuan off", 1, 9)
    assert (await load_content(db, settings.content_dir)).changed == 0
