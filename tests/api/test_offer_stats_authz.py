"""`offerStats` × every kind of caller: the merchant reads its own offers, an operator those of its districts, an
admin all; everyone else gets the coded error, and reading changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from server.api.ids import to_global
from server.domain.offers import repository
from server.domain.offers import service as offers
from tests.api.test_mutations_authz import ACTORS, ADMIN, MERCHANT, OPERATOR, SHOP_X, World, world  # noqa: F401
from tests.conftest import RunningApp, gql

BY_OFFER = ("query($o: ID, $d: Int!) { offerStats(offerId: $o, days: $d) "
            "{ offerId title claims views days { day views claims } } }")
BY_SHOP = ("query($m: ID, $d: Int!) { offerStats(merchantId: $m, days: $d) "
           "{ offerId claims views days { day claims } } }")
ALLOWED = {MERCHANT, OPERATOR, ADMIN}


@pytest.fixture(scope="module")
async def offer_id(world: World, app_server: RunningApp) -> str:  # noqa: F811
    now = datetime.now(UTC)
    offer = await offers.create(world.db, world.admin, SHOP_X, offers.OfferInput(
        title={"zh-CN": "统计优惠"}, kind="percent_off", percent_off=10, valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(days=5)))
    await offers.transition(world.db, world.admin, offer.id, "publish", 1)
    async with httpx.AsyncClient(base_url=app_server.url, timeout=30) as http:
        body = await gql(http, "mutation($id: ID!) { recordOfferInteraction(id: $id, kind: VIEW) { code } }",
                         {"id": to_global("Offer", offer.id)})
    assert body["data"]["recordOfferInteraction"] == [], body
    published = (await repository.by_ids(world.db, [offer.id]))[offer.id]
    # claims arrive through the coupons of issue 18 point 1; the counter they bump is the shared contract
    await repository.bump_daily(world.db, published, "claims", now, by=3)
    await repository.bump_daily(world.db, published, "claims", now - timedelta(days=2))
    return offer.id


async def state(db: Any) -> tuple[int, int, Any]:
    return (await db.audit.count_documents({}), await db.offer_stats_daily.count_documents({}),
            await db.offer_stats_daily.find({}).sort("_id", 1).to_list(None))


@pytest.mark.parametrize("shape", ["offer", "merchant"])
async def test_offer_stats_authorization(world: World, offer_id: str, http: httpx.AsyncClient,  # noqa: F811
                                         shape: str) -> None:
    query, variables = ((BY_OFFER, {"o": to_global("Offer", offer_id), "d": 7}) if shape == "offer"
                        else (BY_SHOP, {"m": to_global("Merchant", SHOP_X), "d": 7}))
    for who in ACTORS:
        token = world.tokens[who]
        headers = {"authorization": f"Bearer {token}"} if token else {}
        before = await state(world.db)
        body = await gql(http, query, variables, headers=headers)
        assert await state(world.db) == before, (who, "reading stats changed data")
        if who in ALLOWED:
            assert "errors" not in body, (who, body)
            mine = [s for s in body["data"]["offerStats"] if s["offerId"] == to_global("Offer", offer_id)]
            assert len(mine) == 1, (who, body)
            stats = mine[0]
            assert len(stats["days"]) == 7
            assert stats["claims"] == 4 and stats["views"] == 1
            assert [d["claims"] for d in stats["days"]][-3:] == [1, 0, 3]
        else:
            expected = "UNAUTHENTICATED" if who == "anonymous" else "FORBIDDEN"
            assert body["data"] is None, (who, body)
            assert [e["extensions"]["code"] for e in body["errors"]] == [expected], (who, body)


async def test_offer_stats_bad_input(world: World, offer_id: str, http: httpx.AsyncClient) -> None:  # noqa: F811
    headers = {"authorization": f"Bearer {world.tokens[ADMIN]}"}
    both = await gql(http, "query($o: ID, $m: ID) { offerStats(offerId: $o, merchantId: $m) { claims } }",
                     {"o": to_global("Offer", offer_id), "m": to_global("Merchant", SHOP_X)}, headers=headers)
    assert both["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    too_long = await gql(http, BY_OFFER, {"o": to_global("Offer", offer_id), "d": 91}, headers=headers)
    assert too_long["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown = await gql(http, BY_OFFER, {"o": to_global("Offer", "no-such-offer"), "d": 7}, headers=headers)
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
