"""Writes leave an audit trail nobody can edit, and what a merchant publishes is what shoppers see at once."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.api.ids import to_global
from server.plumbing.persisted import digest
from server.settings import ROOT
from tests.conftest import RunningApp, gql
from tests.web.conftest import DISTRICT, OTHER_DISTRICT, SHOP_X, People, signed_in
from tests.web.forms import new_offer_form, profile_form


async def test_writes_are_audited_and_operators_read_their_districts_log(
        app_server: RunningApp, db: Any, people: People) -> None:
    merchant = await signed_in(app_server, people.merchant_a)
    stored = await db.merchants.find_one({"_id": SHOP_X})
    assert (await merchant.post(f"/admin/merchants/{SHOP_X}", profile_form(stored, phone="+86 755 8888 0001"))
            ).status_code == 303
    entry = await db.audit.find_one({"action": "merchant.update", "target_id": SHOP_X}, sort=[("at", -1)])
    assert entry["actor_id"] == people.merchant_a.id
    assert entry["before"]["phone"] == stored["phone"] and entry["after"]["phone"] == "+86 755 8888 0001"

    operator = await signed_in(app_server, people.operator, **{"accept-language": "en"})
    log = await operator.get("/admin/audit")
    assert log.status_code == 200
    item = log.text.split(f"<code>{SHOP_X}</code>", 1)
    assert len(item) == 2 and "merchant.update" in item[0].rsplit('<li class="card">', 1)[1]
    diff = item[1].split("</li>", 1)[0]
    assert "phone" in diff and stored["phone"] in diff and "+86 755 8888 0001" in diff
    assert people.merchant_a.email in item[0].rsplit('<li class="card">', 1)[1]

    other = await signed_in(app_server, people.other_operator)
    assert f"<code>{SHOP_X}</code>" not in (await other.get("/admin/audit")).text  # another district's log
    assert (await merchant.get("/admin/audit")).status_code == 403  # merchants have no audit page
    admin = await signed_in(app_server, people.admin)
    assert f"<code>{SHOP_X}</code>" in (await admin.get("/admin/audit")).text
    for browser in (merchant, operator, other, admin):
        await browser.aclose()


async def test_nothing_in_the_back_office_edits_or_deletes_audit_entries(
        app_server: RunningApp, db: Any, people: People) -> None:
    from server.web.admin.routes import back_office_routes

    for route in back_office_routes():
        path = getattr(route, "path", "")
        if "audit" in path:
            assert set(getattr(route, "methods", None) or ()) <= {"GET", "HEAD"}, path
    entry = await db.audit.find_one({})
    assert entry is not None
    admin = await signed_in(app_server, people.admin)
    before = await db.audit.count_documents({})
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for url in ("/admin/audit", f"/admin/audit/{entry['_id']}"):
            response = await admin.client.request(method, url, data={"csrf": admin.csrf})
            assert response.status_code in (404, 405), (method, url)
    assert await db.audit.count_documents({}) == before
    assert await db.audit.find_one({"_id": entry["_id"]}) == entry
    await admin.aclose()


async def test_publishing_shows_the_offer_to_shoppers_and_withdrawing_hides_it(
        app_server: RunningApp, db: Any, people: People, http: httpx.AsyncClient) -> None:
    merchant = await signed_in(app_server, people.merchant_a)
    now = datetime.now(UTC)
    title = "华强北贴膜节 八折"
    created = await merchant.post(f"/admin/merchants/{SHOP_X}/offers/new", new_offer_form(
        now - timedelta(minutes=5), now + timedelta(days=3), **{"title.zh-CN": title}))
    assert created.status_code == 303
    offer = await db.offers.find_one({"merchant_id": SHOP_X, "title.zh-CN": title})
    assert offer["status"] == "draft"
    listing = await merchant.get(created.headers["location"])
    assert title in listing.text and "草稿" in listing.text

    query = """{ offers(filter: {merchantId: "%s"}, first: 50) { edges { node { slug title couponCode } } } }""" % (
        to_global("Merchant", SHOP_X))
    shop_page = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest(
        (ROOT / "graphql" / "operations" / "MerchantPage.graphql").read_text(encoding="utf-8"))}}),
        "variables": json.dumps({"id": to_global("Merchant", SHOP_X), "locale": "zh-CN"})}

    async def shopper_sees() -> tuple[bool, bool]:
        data = (await gql(http, query, headers={"accept-language": "zh-CN"}))["data"]
        in_list = any(e["node"]["slug"] == offer["_id"] for e in data["offers"]["edges"])
        # the shop's page as the PWA reads it: a persisted GET, answered from the public cache when unchanged
        page = (await http.get("/graphql", params=shop_page)).json()["data"]["merchant"]
        on_page = any(o["id"] == to_global("Offer", offer["_id"]) for o in page["offers"])
        return in_list, on_page

    assert await shopper_sees() == (False, False)  # a draft is private
    published = await merchant.post(f"/admin/offers/{offer['_id']}/publish", {"version": str(offer["version"])})
    assert published.status_code == 303 and "ok=published" in published.headers["location"]
    assert await shopper_sees() == (True, True)
    page = await merchant.get(published.headers["location"])
    assert "已发布，顾客现在可以看到。" in page.text
    offer = await db.offers.find_one({"_id": offer["_id"]})
    withdrawn = await merchant.post(f"/admin/offers/{offer['_id']}/withdraw", {"version": str(offer["version"])})
    assert withdrawn.status_code == 303
    assert await shopper_sees() == (False, False)
    # withdrawing twice is refused with a message, not an error
    again = await merchant.post(f"/admin/offers/{offer['_id']}/withdraw", {"version": str(offer["version"] + 1)})
    assert again.status_code == 422 and "只有已发布的优惠可以下架。" in again.text
    assert [e["action"] async for e in db.audit.find({"target_id": offer["_id"]}).sort([("at", 1)])] == [
        "offer.create", "offer.publish", "offer.withdraw"]
    await merchant.aclose()


async def test_an_operator_of_another_district_cannot_see_the_shop(app_server: RunningApp, people: People) -> None:
    other = await signed_in(app_server, people.other_operator)
    for url in (f"/admin/merchants/{SHOP_X}", f"/admin/merchants/{SHOP_X}/offers"):
        assert (await other.get(url)).status_code == 403
    listing = await other.get("/admin/merchants")
    assert SHOP_X not in listing.text and OTHER_DISTRICT in listing.text
    await other.aclose()


async def test_api_tokens_are_audited_without_their_secret(app_server: RunningApp, db: Any, people: People) -> None:
    merchant = await signed_in(app_server, people.merchant_a)
    await merchant.form_page("/admin/tokens")
    created = await merchant.post("/admin/tokens", {"name": "audited pos", "scopes": ["offers", "products"]})
    assert created.status_code == 200
    found = re.search(r'id="token-secret" type="text" readonly value="([^"]+)"', created.text)
    assert found
    secret = found.group(1)
    token = await db.api_tokens.find_one({"name": "audited pos", "account_id": people.merchant_a.id})
    entry = await db.audit.find_one({"action": "token.create", "target_id": token["_id"]})
    assert entry["target_type"] == "api_token" and entry["actor_id"] == people.merchant_a.id
    assert entry["before"] is None and entry["after"]["scopes"] == ["offers", "products"]
    assert entry["after"]["name"] == "audited pos" and entry["district_ids"] == []
    revoked = await merchant.post(f"/admin/tokens/{token['_id']}/revoke", {})
    assert revoked.status_code == 303
    entry2 = await db.audit.find_one({"action": "token.revoke", "target_id": token["_id"]})
    assert entry2["before"]["status"] == "active" and entry2["after"]["status"] == "revoked"
    for logged in (entry, entry2):
        text = json.dumps(logged, default=str)
        assert secret not in text and token["token_hash"] not in text and "token_hash" not in text
    await merchant.aclose()


async def test_merchant_invitations_are_in_their_districts_audit_log(
        app_server: RunningApp, db: Any, people: People) -> None:
    operator = await signed_in(app_server, people.operator)
    await operator.form_page("/admin/invite")
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    invited = await operator.post("/admin/invite", {"email": email, "role": "merchant", "merchant_ids": [SHOP_X]})
    assert invited.status_code == 200
    entry = await db.audit.find_one({"action": "invite", "target_id": email})
    assert entry["district_ids"] == [DISTRICT] and entry["after"]["merchant_ids"] == [SHOP_X]
    assert f"<code>{email}</code>" in (await operator.get("/admin/audit")).text
    other = await signed_in(app_server, people.other_operator)
    assert email not in (await other.get("/admin/audit")).text
    for browser in (operator, other):
        await browser.aclose()
