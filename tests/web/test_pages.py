"""What each role finds in the back office, walked through the real forms."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from server.domain.offers import service as offers
from tests.conftest import RunningApp
from tests.web.conftest import DISTRICT, SHOP_X, SHOP_Y, People, signed_in
from tests.web.forms import festival_form, product_form, profile_form


async def test_a_merchant_sees_only_its_shops_and_shop_menus(app_server: RunningApp, people: People) -> None:
    merchant = await signed_in(app_server, people.merchant_a, **{"accept-language": "en"})
    home = (await merchant.get("/admin/")).text
    assert f"/admin/merchants/{SHOP_X}/offers" in home and SHOP_Y not in home
    for hidden in ("/admin/festivals", "/admin/audit", "/admin/accounts", "/admin/areas"):
        assert f'href="{hidden}"' not in home, hidden
    assert "Signed in as" in home and "merchant" in home
    assert (await merchant.get(f"/admin/merchants/{SHOP_Y}")).status_code == 403
    assert (await merchant.get("/admin/login")).status_code == 303  # already signed in
    await merchant.aclose()


async def test_operator_and_admin_dashboards(app_server: RunningApp, people: People) -> None:
    operator = await signed_in(app_server, people.operator)
    home = (await operator.get("/admin/")).text
    assert "华强北" in home and "福田" not in home
    for link in ("/admin/festivals", "/admin/audit", "/admin/invite", f"/admin/areas?district={DISTRICT}"):
        assert f'href="{link}"' in home, link
    assert 'href="/admin/accounts"' not in home
    assert (await operator.get("/admin/accounts")).status_code == 403
    admin = await signed_in(app_server, people.admin)
    home = (await admin.get("/admin/")).text
    assert "华强北" in home and "福田" in home and 'href="/admin/accounts"' in home
    accounts = await admin.get("/admin/accounts")
    assert accounts.status_code == 200 and people.operator.email in accounts.text
    assert "password" not in accounts.text.lower() or "password_hash" not in accounts.text
    for browser in (operator, admin):
        await browser.aclose()


async def test_an_operator_runs_a_festival_and_features_an_offer(app_server: RunningApp, db: Any,
                                                                 people: People) -> None:
    operator = await signed_in(app_server, people.operator, **{"accept-language": "en"})
    form = await operator.form_page("/admin/festivals/new")
    assert 'value="huaqiangbei" checked' in form and "futian-cbd" not in form  # only its own district
    today = date.today()
    data = {"slug": "hqb-gadget-week", "name.zh-CN": "华强北数码周", "name.zh-HK": "", "name.en": "Gadget Week",
            "description.zh-CN": "", "description.zh-HK": "", "description.en": "", "kind": "shopping",
            "starts_on": today.isoformat(), "ends_on": (today - timedelta(days=1)).isoformat(),
            "district_ids": [DISTRICT]}
    bad = await operator.post("/admin/festivals/new", data)
    assert bad.status_code == 422 and "The end must be after the start." in bad.text
    assert 'value="Gadget Week"' in bad.text
    taken = await operator.post("/admin/festivals/new", {**data, "slug": "Not A Slug",
                                                         "ends_on": (today + timedelta(days=7)).isoformat()})
    assert taken.status_code == 422 and "lower-case letters" in taken.text
    created = await operator.post("/admin/festivals/new", {**data, "ends_on": (today + timedelta(days=7)).isoformat()})
    assert created.status_code == 303 and created.headers["location"].startswith("/admin/festivals/hqb-gadget-week")
    assert "Gadget Week" in (await operator.get("/admin/festivals")).text
    stored = await db.festivals.find_one({"_id": "hqb-gadget-week"})
    edited = await operator.post("/admin/festivals/hqb-gadget-week",
                                 festival_form(stored, **{"name.en": "Gadget Days"}))
    assert edited.status_code == 303
    assert (await db.festivals.find_one({"_id": "hqb-gadget-week"}))["name"]["en"] == "Gadget Days"
    # a festival that spans other districts is not this operator's to edit
    assert (await operator.get("/admin/festivals/winter-shopping-season-2026")).status_code == 403

    now = datetime.now(UTC)
    offer = await offers.create(db, people.merchant_a.actor(), SHOP_X, offers.OfferInput(
        title={"zh-CN": "数码周优惠"}, kind="gift", valid_from=now, valid_until=now + timedelta(days=3),
        festival_id="hqb-gadget-week"))
    offer = await offers.transition(db, people.merchant_a.actor(), offer.id, "publish", offer.version)
    page = await operator.get("/admin/festivals/hqb-gadget-week/offers")
    assert "数码周优惠" in page.text and "Not decided" in page.text
    featured = await operator.post(f"/admin/offers/{offer.id}/decision", {"decision": "featured",
                                                                          "version": str(offer.version)})
    assert featured.status_code == 303
    assert (await db.offers.find_one({"_id": offer.id}))["festival_decision"] == "featured"
    assert "Featured" in (await operator.get("/admin/festivals/hqb-gadget-week/offers")).text
    # the merchant sees the decision next to its offer
    merchant = await signed_in(app_server, people.merchant_a)
    assert "已精选" in (await merchant.get(f"/admin/merchants/{SHOP_X}/offers")).text
    for browser in (operator, merchant):
        await browser.aclose()


async def test_an_operator_lists_a_new_shop_and_invites_its_owner(app_server: RunningApp, db: Any,
                                                                  people: People) -> None:
    operator = await signed_in(app_server, people.operator)
    form = await operator.form_page(f"/admin/districts/{DISTRICT}/merchants/new")
    assert 'name="area_id"' in form and "hqb-seg-square" in form
    template = await db.merchants.find_one({"_id": SHOP_X})
    data = profile_form(template, **{"name.zh-CN": "华强北新开的店", "name.en": "New Shop"})
    data.pop("version")
    created = await operator.post(f"/admin/districts/{DISTRICT}/merchants/new", data)
    assert created.status_code == 303
    new_id = created.headers["location"].split("/admin/merchants/", 1)[1].split("?", 1)[0]
    shop = await db.merchants.find_one({"_id": new_id})
    assert shop["district_id"] == DISTRICT and shop["name"]["en"] == "New Shop"
    assert "华强北新开的店" in (await operator.get(f"/admin/merchants?district={DISTRICT}")).text
    assert (await operator.get(f"/admin/districts/{DISTRICT}/merchants/new")).status_code == 200
    assert (await operator.get("/admin/districts/futian-cbd/merchants/new")).status_code == 403

    page = await operator.form_page(f"/admin/invite?merchant={new_id}")
    assert f'value="{new_id}" selected' in page and 'value="operator"' not in page  # operators invite merchants
    done = await operator.post("/admin/invite", {"email": "owner@newshop.example", "role": "merchant",
                                                 "merchant_ids": [new_id]})
    assert done.status_code == 200 and "/admin/invite/" in done.text
    invitation = await db.invitations.find_one({"email": "owner@newshop.example"})
    assert invitation["merchant_ids"] == [new_id] and invitation["role"] == "merchant"
    bad = await operator.post("/admin/invite", {"email": "not an email", "role": "merchant", "merchant_ids": [new_id]})
    assert bad.status_code == 422 and "请输入有效的电子邮箱。" in bad.text and 'value="not an email"' in bad.text
    await operator.aclose()


async def test_area_capacities(app_server: RunningApp, db: Any, people: People) -> None:
    operator = await signed_in(app_server, people.operator, **{"accept-language": "en"})
    page = await operator.form_page(f"/admin/areas?district={DISTRICT}")
    area = await db.areas.find_one({"district_id": DISTRICT}, sort=[("sort", 1)])
    assert f'id="cap-{area["_id"]}"' in page
    url = f"/admin/areas/{area['_id']}/capacity"
    version = str(area.get("version") or 0)
    zero = await operator.post(url, {"capacity": "0", "version": version})
    assert zero.status_code == 422 and "outside the allowed range" in zero.text and 'value="0"' in zero.text
    ok = await operator.post(url, {"capacity": "55555", "version": version})
    assert ok.status_code == 303 and (await db.areas.find_one({"_id": area["_id"]}))["capacity"] == 55555
    stale = await operator.post(url, {"capacity": "66666", "version": version})
    assert stale.status_code == 409 and "Changed by someone else" in stale.text and "55555" in stale.text
    assert (await db.areas.find_one({"_id": area["_id"]}))["capacity"] == 55555
    other = await signed_in(app_server, people.other_operator)
    assert area["_id"] not in (await other.get("/admin/areas")).text
    for browser in (operator, other):
        await browser.aclose()


async def test_a_merchant_manages_its_specialties(app_server: RunningApp, db: Any, people: People) -> None:
    merchant = await signed_in(app_server, people.merchant_a)
    page = await merchant.form_page(f"/admin/merchants/{SHOP_X}/products")
    assert "沙井蚝" in page
    toggled = await merchant.post(f"/admin/merchants/{SHOP_X}/products/shajing-oyster/sold", {"sold": "1"})
    assert toggled.status_code == 303
    assert SHOP_X in (await db.products.find_one({"_id": "shajing-oyster"}))["sold_by"]
    page = (await merchant.get(f"/admin/merchants/{SHOP_X}/products")).text
    assert re.search(r"沙井蚝.*?本店有售", page, flags=re.S)
    await merchant.post(f"/admin/merchants/{SHOP_X}/products/shajing-oyster/sold", {"sold": "0"})
    assert SHOP_X not in (await db.products.find_one({"_id": "shajing-oyster"}))["sold_by"]
    # shared city specialties are edited by admins only
    assert (await merchant.get("/admin/products/shajing-oyster")).status_code == 403

    data = {"name.zh-CN": "华强北芯片钥匙扣", "name.zh-HK": "", "name.en": "Chip keyring", "story.zh-CN": "",
            "story.zh-HK": "", "story.en": "", "unit.zh-CN": "每个", "unit.zh-HK": "", "unit.en": "",
            "category": "souvenir", "price_min_yuan": "20", "price_max_yuan": "10"}
    bad = await merchant.post(f"/admin/merchants/{SHOP_X}/products/new", data)
    assert bad.status_code == 422 and "最高价不能低于最低价。" in bad.text and "此项必填。" in bad.text
    assert 'value="Chip keyring"' in bad.text
    created = await merchant.post(f"/admin/merchants/{SHOP_X}/products/new", {
        **data, "story.zh-CN": "把旧芯片做成钥匙扣。", "price_max_yuan": "30"})
    assert created.status_code == 303
    product = await db.products.find_one({"owner_merchant_id": SHOP_X, "name.en": "Chip keyring"})
    assert product["sold_by"] == [SHOP_X]
    form = await merchant.form_page(f"/admin/products/{product['_id']}")
    assert 'value="华强北芯片钥匙扣"' in form
    assert 'name="price_min_yuan" value="20"' in form and "最低价（元）" in form  # merchants read yuan
    typo = await merchant.post(f"/admin/products/{product['_id']}", product_form(product, price_max_yuan="35.505"))
    assert typo.status_code == 422 and 'value="35.505"' in typo.text  # never rounded into another price
    assert "请输入金额（元），最多两位小数" in typo.text
    assert (await db.products.find_one({"_id": product["_id"]}))["price_max_fen"] == 3000
    saved = await merchant.post(f"/admin/products/{product['_id']}", product_form(product, price_max_yuan="¥35.50"))
    assert saved.status_code == 303
    assert (await db.products.find_one({"_id": product["_id"]}))["price_max_fen"] == 3550
    await merchant.aclose()


async def test_api_tokens_show_the_secret_once_and_can_be_revoked(app_server: RunningApp, db: Any,
                                                                  people: People) -> None:
    merchant = await signed_in(app_server, people.merchant_a, **{"accept-language": "en"})
    await merchant.form_page("/admin/tokens")
    none = await merchant.post("/admin/tokens", {"name": "POS", "scopes": []})
    assert none.status_code == 422 and "Choose at least one valid scope." in none.text and 'value="POS"' in none.text
    created = await merchant.post("/admin/tokens", {"name": "POS till 1", "scopes": ["offers", "products"]})
    assert created.status_code == 200 and "This is shown only once" in created.text
    secret = re.search(r'id="token-secret" type="text" readonly value="(sq_[^"]+)"', created.text).group(1)  # type: ignore[union-attr]
    stored = await db.api_tokens.find_one({"name": "POS till 1"})
    assert secret not in str(stored) and stored["scopes"] == ["offers", "products"]
    listing = await merchant.get("/admin/tokens")
    assert "POS till 1" in listing.text and secret not in listing.text
    # a token is for GraphQL integrations; it doesn't open the back office
    async with httpx.AsyncClient(base_url=app_server.url) as integration:
        bearer = await integration.get("/admin/", headers={"authorization": f"Bearer {secret}"})
    assert bearer.status_code == 303 and bearer.headers["location"].startswith("/admin/login")
    revoked = await merchant.post(f"/admin/tokens/{stored['_id']}/revoke")
    assert revoked.status_code == 303
    assert (await db.api_tokens.find_one({"_id": stored["_id"]}))["status"] == "revoked"
    assert "POS till 1" not in (await merchant.get("/admin/tokens")).text
    await merchant.aclose()
