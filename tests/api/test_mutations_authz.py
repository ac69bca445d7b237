"""Every GraphQL mutation × every kind of caller: only the allowed succeed; the rest change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from server.domain.accounts import service as accounts
from server.domain.actor import Actor
from server.domain.authz import SCOPES
from server.domain.coupons import service as coupons
from server.domain.coupons.models import display
from server.domain.festivals import service as festivals
from server.domain.offers import service as offers
from server.domain.products import service as products
from tests.conftest import RunningApp, gql
from tests.support import make_account, published_offer

SHOP_X, SHOP_Y = "hqb-huaqiang-digital-phone-mall", "hqb-xinpin-components"
HQB_AREA = "hqb-seg-square"
NOW = datetime.now(UTC)


@dataclass
class World:
    db: Any
    admin: Actor
    admin_account: Any
    tokens: dict[str, str | None]  # actor name → bearer secret (None: anonymous)
    festival_id: str


@pytest.fixture(scope="module")
async def world(db_client: Any, app_server: RunningApp) -> World:
    db = db_client[app_server.db_name]
    people = {
        "merchant of the shop": await make_account(db, "merchant", merchant_ids=[SHOP_X]),
        "merchant of another shop": await make_account(db, "merchant", merchant_ids=[SHOP_Y]),
        "operator of the district": await make_account(db, "operator", district_ids=["huaqiangbei"]),
        "operator of another district": await make_account(db, "operator", district_ids=["luohu-golden-triangle"]),
        "admin": await make_account(db, "admin"),
    }
    tokens: dict[str, str | None] = {"anonymous": None}
    for name, account in people.items():
        token = await accounts.create_token(db, account.actor(), "matrix", list(SCOPES))
        tokens[name] = token.secret
    admin = people["admin"].actor()
    fest = await festivals.create(db, admin, f"hqb-fest-{uuid.uuid4().hex[:6]}", festivals.FestivalInput(
        name={"zh-CN": "华强北数码节"}, kind="shopping", starts_on=date.today(),
        ends_on=date.today() + timedelta(days=10), district_ids=["huaqiangbei"]))
    return World(db, admin, people["admin"], tokens, fest.id)


def offer_input(festival: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"title": {"zhCN": "测试优惠", "en": "Test offer"}, "kind": "PERCENT_OFF", "percentOff": 15,
                            "validFrom": NOW.isoformat(), "validUntil": (NOW + timedelta(days=3)).isoformat()}
    if festival:
        data["festivalId"] = to_global("Festival", festival)
    return data


async def draft_offer(w: World, festival: str | None = None) -> Any:
    return await offers.create(w.db, w.admin, SHOP_X, offers.OfferInput(
        title={"zh-CN": "草稿"}, kind="percent_off", percent_off=10, valid_from=NOW,
        valid_until=NOW + timedelta(days=2), festival_id=festival))


PROFILE = {"name": {"zhCN": "华强数码手机城", "en": "Huaqiang Digital Phone Mall"}, "phone": "+86 755 8300 0001",
           "categories": ["mobile-phones"], "priceLevel": 2, "lat": 22.5445, "lng": 114.0855,
           "areaId": to_global("Area", HQB_AREA),
           "hours": [{"day": d, "spans": ["10:00-22:00"]} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]}
PRODUCT = {"name": {"zhCN": "华强北纪念徽章"}, "story": {"zhCN": "电子街的纪念品。"}, "category": "souvenir",
           "priceMinFen": 1000, "priceMaxFen": 3000}

# name → (set-up returning (mutation document, variables, collection, document id or None for creates), allowed)
Case = Callable[[World], Awaitable[tuple[str, dict[str, Any], str, str | None]]]
MERCHANT, OPERATOR, ADMIN = "merchant of the shop", "operator of the district", "admin"
SIGNED_IN = {MERCHANT, "merchant of another shop", OPERATOR, "operator of another district", ADMIN}


async def create_offer(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    return ("mutation($m: ID!, $i: OfferInput!) { r: createOffer(merchantId: $m, input: $i) { errors { code } } }",
            {"m": to_global("Merchant", SHOP_X), "i": offer_input()}, "offers", None)


async def update_offer(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    o = await draft_offer(w)
    return ("mutation($id: ID!, $i: OfferInput!) { r: updateOffer(id: $id, version: 1, input: $i) "
            "{ errors { code } } }",
            {"id": to_global("Offer", o.id), "i": offer_input()}, "offers", o.id)


async def publish_offer(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    o = await draft_offer(w)
    return ("mutation($id: ID!) { r: publishOffer(id: $id, version: 1) { errors { code } } }",
            {"id": to_global("Offer", o.id)}, "offers", o.id)


async def withdraw_offer(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    o = await draft_offer(w)
    await offers.transition(w.db, w.admin, o.id, "publish", 1)
    return ("mutation($id: ID!) { r: withdrawOffer(id: $id, version: 2) { errors { code } } }",
            {"id": to_global("Offer", o.id)}, "offers", o.id)


async def decide_offer(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    o = await draft_offer(w, w.festival_id)
    return ("mutation($id: ID!) { r: decideFestivalOffer(id: $id, version: 1, decision: FEATURED) "
            "{ errors { code } } }",
            {"id": to_global("Offer", o.id)}, "offers", o.id)


def localized(texts: dict[str, str]) -> dict[str, str]:
    return {{"zh-CN": "zhCN", "zh-HK": "zhHK"}.get(k, k): v for k, v in texts.items()}


async def update_profile(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    doc = await w.db.merchants.find_one({"_id": SHOP_X})
    lng, lat = doc["location"]["coordinates"]
    # the shop's own profile with one change, so other tests still find it as it was
    profile = {**PROFILE, "name": localized(doc["name"]), "description": localized(doc["description"]),
               "address": localized(doc["address"]), "categories": doc["categories"], "lat": lat, "lng": lng,
               "areaId": to_global("Area", doc["area_id"]), "priceLevel": doc["price_level"] % 4 + 1,
               "hours": [{"day": d, "spans": spans} for d, spans in doc["hours"].items()]}
    return ("mutation($id: ID!, $v: Int!, $i: MerchantProfileInput!) { r: updateMerchantProfile(id: $id, version: $v,"
            " input: $i) { errors { code } } }",
            {"id": to_global("Merchant", SHOP_X), "v": doc.get("version", 0), "i": profile}, "merchants", SHOP_X)


async def create_merchant(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    return ("mutation($d: ID!, $i: MerchantProfileInput!) { r: createMerchant(districtId: $d, input: $i) "
            "{ errors { code } } }", {"d": to_global("District", "huaqiangbei"), "i": PROFILE}, "merchants", None)


async def create_festival(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    fest = {"name": {"zhCN": "新节"}, "kind": "SHOPPING", "startsOn": "2027-03-01", "endsOn": "2027-03-03",
            "districtIds": [to_global("District", "huaqiangbei")]}
    return ("mutation($s: String!, $i: FestivalInput!) { r: createFestival(slug: $s, input: $i) { errors { code } } }",
            {"s": f"fest-{uuid.uuid4().hex[:8]}", "i": fest}, "festivals", None)


async def update_festival(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    doc = await w.db.festivals.find_one({"_id": w.festival_id})
    fest = {"name": {"zhCN": "华强北数码节", "en": "Huaqiangbei Digital Days"}, "kind": "SHOPPING",
            "startsOn": doc["starts_on"], "endsOn": doc["ends_on"],
            "districtIds": [to_global("District", "huaqiangbei")]}
    return ("mutation($id: ID!, $v: Int!, $i: FestivalInput!) { r: updateFestival(id: $id, version: $v, input: $i) "
            "{ errors { code } } }", {"id": to_global("Festival", w.festival_id), "v": doc["version"], "i": fest},
            "festivals", w.festival_id)


async def set_capacity(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    doc = await w.db.areas.find_one({"_id": HQB_AREA})
    return ("mutation($id: ID!, $v: Int!) { r: setAreaCapacity(id: $id, version: $v, capacity: 4321) "
            "{ errors { code } } }", {"id": to_global("Area", HQB_AREA), "v": doc.get("version", 0)}, "areas", HQB_AREA)


async def sold_here(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    product = await w.db.products.find_one({"_id": "shajing-oyster"}, {"_id": 1})
    await products.set_sold_here(w.db, w.admin, SHOP_X, product["_id"], False)  # each cell starts "not sold"
    return ("mutation($m: ID!, $p: ID!) { r: setProductSoldHere(merchantId: $m, productId: $p, sold: true) "
            "{ errors { code } } }", {"m": to_global("Merchant", SHOP_X), "p": to_global("Product", product["_id"])},
            "products", product["_id"])


async def create_product(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    return ("mutation($m: ID!, $i: ProductInput!) { r: createProduct(merchantId: $m, input: $i) { errors { code } } }",
            {"m": to_global("Merchant", SHOP_X), "i": PRODUCT}, "products", None)


async def update_product(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    p = await products.create(w.db, w.admin, SHOP_X, products.ProductInput(
        name={"zh-CN": "自家手信"}, story={"zh-CN": "故事"}, category="snacks", price_min_fen=100, price_max_fen=200))
    return ("mutation($id: ID!, $i: ProductInput!) { r: updateProduct(id: $id, version: 1, input: $i) "
            "{ errors { code } } }", {"id": to_global("Product", p.id), "i": PRODUCT}, "products", p.id)


async def invite_merchant(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    return ("mutation($e: String!, $m: [ID!]) { r: inviteAccount(email: $e, role: \"merchant\", merchantIds: $m) "
            "{ errors { code } } }", {"e": f"m-{uuid.uuid4().hex[:6]}@example.com",
                                      "m": [to_global("Merchant", SHOP_X)]}, "invitations", None)


async def invite_operator(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    return ("mutation($e: String!, $d: [ID!]) { r: inviteAccount(email: $e, role: \"operator\", districtIds: $d) "
            "{ errors { code } } }", {"e": f"o-{uuid.uuid4().hex[:6]}@example.com",
                                      "d": [to_global("District", "huaqiangbei")]}, "invitations", None)


async def create_token(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    return ("mutation { r: createApiToken(name: \"pos\", scopes: [\"offers\"]) { errors { code } } }", {},
            "api_tokens", None)


async def claim_offer(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    o = await published_offer(w.db, w.admin_account, SHOP_X)
    return ("mutation($id: ID!, $d: String!) { r: claimOffer(id: $id, deviceKey: $d) { errors { code } } }",
            {"id": to_global("Offer", o.id), "d": str(uuid.uuid4())}, "coupons", None)


async def redeem_coupon(w: World) -> tuple[str, dict[str, Any], str, str | None]:
    o = await published_offer(w.db, w.admin_account, SHOP_X)
    claimed = await coupons.claim(w.db, str(uuid.uuid4()), o.id, datetime.now(UTC))
    return ("mutation($c: String!) { r: redeemCoupon(code: $c) { errors { code } } }",
            {"c": display(claimed.coupon.code)}, "coupons", claimed.coupon.code)


CASES: dict[str, tuple[Case, set[str]]] = {
    "createOffer": (create_offer, {MERCHANT, ADMIN}),
    "updateOffer": (update_offer, {MERCHANT, ADMIN}),
    "publishOffer": (publish_offer, {MERCHANT, ADMIN}),
    "withdrawOffer": (withdraw_offer, {MERCHANT, ADMIN}),
    "decideFestivalOffer": (decide_offer, {OPERATOR, ADMIN}),
    "updateMerchantProfile": (update_profile, {MERCHANT, OPERATOR, ADMIN}),
    "createMerchant": (create_merchant, {OPERATOR, ADMIN}),
    "createFestival": (create_festival, {OPERATOR, ADMIN}),
    "updateFestival": (update_festival, {OPERATOR, ADMIN}),
    "setAreaCapacity": (set_capacity, {OPERATOR, ADMIN}),
    "setProductSoldHere": (sold_here, {MERCHANT, ADMIN}),
    "createProduct": (create_product, {MERCHANT, ADMIN}),
    "updateProduct": (update_product, {MERCHANT, ADMIN}),
    "inviteAccount(merchant)": (invite_merchant, {OPERATOR, ADMIN}),
    "inviteAccount(operator)": (invite_operator, {ADMIN}),
    "createApiToken": (create_token, SIGNED_IN),
    "claimOffer": (claim_offer, {"anonymous", *SIGNED_IN}),  # shoppers are anonymous devices
    "redeemCoupon": (redeem_coupon, {MERCHANT, ADMIN}),
}
# the code a signed-in caller outside `allowed` gets, where it says more than FORBIDDEN
REFUSED_AS = {"redeemCoupon": "NOT_YOUR_OFFER"}
ACTORS = ["anonymous", MERCHANT, "merchant of another shop", OPERATOR, "operator of another district", ADMIN]


async def snapshot(db: Any, collection: str, doc_id: str | None) -> Any:
    if doc_id is None:
        return await db[collection].count_documents({})
    return await db[collection].find_one({"_id": doc_id})


async def test_mutation_authorization_matrix(world: World, http: httpx.AsyncClient) -> None:
    cells = 0
    for name, (case, allowed) in CASES.items():
        for who in ACTORS:
            query, variables, collection, doc_id = await case(world)
            token = world.tokens[who]
            headers = {"authorization": f"Bearer {token}"} if token else {}
            before = await snapshot(world.db, collection, doc_id)
            audited = await world.db.audit.count_documents({})
            body = await gql(http, query, variables, headers=headers)
            assert "errors" not in body, (name, who, body)
            errors = body["data"]["r"]["errors"]
            after = await snapshot(world.db, collection, doc_id)
            if who in allowed:
                assert errors == [], (name, who, errors)
                assert after != before, (name, who, "an allowed write must change something")
            else:
                expected = "UNAUTHENTICATED" if who == "anonymous" else REFUSED_AS.get(name, "FORBIDDEN")
                assert [e["code"] for e in errors] == [expected], (name, who, errors)
                assert after == before, (name, who, "a refused write changed data")
                assert await world.db.audit.count_documents({}) == audited, (name, who, "a refusal was audited")
            cells += 1
    print(f"\nmutation authorization matrix: {len(CASES)} mutations x {len(ACTORS)} callers = {cells} cells")
    assert cells == len(CASES) * len(ACTORS)
