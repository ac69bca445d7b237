"""Every back-office form action (each POST endpoint) × every kind of actor.

Only the allowed actors succeed; the others get 403 (anonymous: a redirect to the sign-in page) and
the stored documents stay exactly as they were.  Run with -s to see the matrix.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from server.domain.accounts import service as accounts
from server.domain.actor import Actor
from server.domain.coupons import service as coupons
from server.domain.crowd import sensors
from server.domain.festivals import service as festivals
from server.domain.images import service as images
from server.domain.offers import service as offers
from server.domain.products import service as products
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service
from tests.conftest import RunningApp
from tests.fixtures import pictures
from tests.support import published_offer
from tests.web.conftest import DISTRICT, SHOP_X, Browser, People, signed_in
from tests.web.forms import festival_form, local, new_offer_form, offer_form, product_form, profile_form

ACTORS = ("anonymous", "merchant_a", "merchant_b", "operator", "other_operator", "admin")
AREA = "hqb-seg-square"
SHARED_PRODUCT = "shajing-oyster"
counter = itertools.count(1)


@dataclass
class World:
    festival_id: str
    offer_id: str
    product_id: str
    people: People
    token_id: str = ""
    sensor_id: str = ""
    campaign_id: str = ""
    image_id: str = ""
    coupon_code: str = ""


@dataclass
class Action:
    name: str
    allowed: set[str]
    url: Callable[[], str]
    data: Callable[[], Awaitable[dict[str, Any]]]
    state: Callable[[], Awaitable[Any]]
    reset: Callable[[], Awaitable[None]] | None = None
    denied: set[int] = field(default_factory=lambda: {403})
    audited: bool = True  # the domain records an audit entry for this write
    files: dict[str, Any] | None = None  # a multipart upload (pictures)


@pytest.fixture(scope="module")
async def world(db: Any, people: People) -> World:
    admin, merchant = people.admin.actor(), people.merchant_a.actor()
    today = date.today()
    festival = await festivals.create(db, admin, "matrix-hqb-festival", festivals.FestivalInput(
        name={"zh-CN": "华强北测试节"}, kind="shopping", starts_on=today, ends_on=today + timedelta(days=30),
        district_ids=[DISTRICT]))
    now = datetime.now(UTC)
    offer = await offers.create(db, merchant, SHOP_X, offers.OfferInput(
        title={"zh-CN": "矩阵测试优惠"}, kind="percent_off", percent_off=10, valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(days=5), festival_id=festival.id))
    product = await products.create(db, merchant, SHOP_X, products.ProductInput(
        name={"zh-CN": "华强北纪念芯片"}, story={"zh-CN": "一枚做成钥匙扣的芯片。"}, category="souvenir",
        price_min_fen=1000, price_max_fen=2000))
    return World(festival.id, offer.id, product.id, people)


@pytest.fixture(scope="module")
async def browsers(app_server: RunningApp, people: People) -> AsyncIterator[dict[str, Browser]]:
    out = {"anonymous": Browser(app_server)}
    for key in ACTORS[1:]:
        out[key] = await signed_in(app_server, getattr(people, key))
    yield out
    for browser in out.values():
        await browser.aclose()


def actions(db: Any, w: World) -> list[Action]:
    async def doc(collection: str, key: str) -> Any:
        return await db[collection].find_one({"_id": key})

    async def ids(collection: str, query: dict[str, Any]) -> list[str]:
        return sorted([d["_id"] async for d in db[collection].find(query, {"_id": 1})])

    async def set_offer(**fields: Any) -> None:
        await db.offers.update_one({"_id": w.offer_id}, {"$set": fields})

    async def fresh_token() -> None:
        token = await accounts.create_token(db, w.people.merchant_a.actor(), "matrix", ["offers"])
        w.token_id = token.id

    async def fresh_sensor() -> None:
        sensor, _ = await sensors.register(db, w.people.admin.actor(), AREA, "people_counter", "matrix")
        w.sensor_id = sensor.id

    async def sensor_data() -> dict[str, Any]:
        return {"area_id": AREA, "kind": "gate_counter", "name": f"matrix gate {next(counter)}"}

    async def rule_data() -> dict[str, Any]:
        return {"raise_at": "PACKED", "clear_below": "BUSY", "cooldown_minutes": str(next(counter) % 1000)}

    async def fresh_campaign() -> None:  # awaiting approval, due tomorrow, by none of the matrix's actors
        now = datetime.now(UTC)
        author = Actor("matrix-author", "author@example.com", "admin")
        made = await campaign_service.create(db, author, campaign_model.CampaignInput(
            title={"zh-CN": "矩阵待批准"}, body={"zh-CN": "矩阵"}, district_ids=[DISTRICT], topics=["offers"],
            send_at=now + timedelta(days=1)), now=now, approval=True)
        w.campaign_id = made.id

    async def campaign_data() -> dict[str, Any]:
        return {"title.zh-CN": f"矩阵推送 {next(counter)}", "body.zh-CN": "矩阵", "district_ids": [DISTRICT],
                "topics": ["offers"], "locales": ["zh-CN", "zh-HK", "en"], "when": "later",
                "send_at": local(datetime.now(UTC) + timedelta(days=1)), "ttl_hours": "24", "urgency": "normal",
                "action": "send"}

    async def fresh_image() -> None:
        made = await images.upload(db, w.people.admin.actor(), "merchant", SHOP_X, PHOTO, {"en": "matrix"})
        w.image_id = made.id

    async def alt_data() -> dict[str, Any]:
        return {"alt.en": f"matrix picture {next(counter)}"}

    async def fresh_coupon() -> None:  # claimed by a shopper's device, of a published offer of SHOP_X
        offer = await published_offer(db, w.people.admin, SHOP_X)
        claimed = await coupons.claim(db, f"matrix-device-{next(counter):06d}", offer.id, datetime.now(UTC))
        w.coupon_code = claimed.coupon.code

    async def redeem_data() -> dict[str, Any]:
        return {"step": "confirm", "code": w.coupon_code, "form_token": f"matrix-{next(counter)}"}

    async def without_x() -> None:
        await db.products.update_one({"_id": SHARED_PRODUCT}, {"$pull": {"sold_by": SHOP_X}})

    async def profile_data() -> dict[str, Any]:
        return profile_form(await doc("merchants", SHOP_X), phone=f"+86 755 {next(counter):04d} 0000")

    async def new_merchant_data() -> dict[str, Any]:
        n = next(counter)
        return profile_form(await doc("merchants", SHOP_X), **{"name.zh-CN": f"矩阵新店 {n}", "version": "0"})

    async def new_offer_data() -> dict[str, Any]:
        now = datetime.now(UTC)
        return new_offer_form(now, now + timedelta(days=3), **{"title.zh-CN": f"矩阵新优惠 {next(counter)}"})

    async def offer_data() -> dict[str, Any]:
        return offer_form(await doc("offers", w.offer_id), **{"title.zh-CN": f"矩阵修改 {next(counter)}"})

    async def version_of_offer() -> dict[str, Any]:
        return {"version": str((await doc("offers", w.offer_id))["version"])}

    async def decision_data() -> dict[str, Any]:
        return {"decision": "featured", **await version_of_offer()}

    async def new_product_data() -> dict[str, Any]:
        return product_form(await doc("products", w.product_id), **{"name.zh-CN": f"矩阵产品 {next(counter)}"})

    async def product_data() -> dict[str, Any]:
        return product_form(await doc("products", w.product_id), price_max_yuan=str(30 + next(counter)))

    async def new_festival_data() -> dict[str, Any]:
        data = festival_form(await doc("festivals", w.festival_id), **{"name.zh-CN": "矩阵新活动"})
        return {**data, "slug": f"matrix-new-{next(counter)}"}

    async def festival_data() -> dict[str, Any]:
        return festival_form(await doc("festivals", w.festival_id), **{"name.zh-CN": f"矩阵活动 {next(counter)}"})

    async def capacity_data() -> dict[str, Any]:
        area = await doc("areas", AREA)
        return {"capacity": str(40000 + next(counter)), "version": str(area.get("version") or 0)}

    async def invite_merchant_data() -> dict[str, Any]:
        return {"email": f"shop-{next(counter)}@example.com", "role": "merchant", "merchant_ids": [SHOP_X]}

    async def invite_operator_data() -> dict[str, Any]:
        return {"email": f"op-{next(counter)}@example.com", "role": "operator", "district_ids": [DISTRICT]}

    async def token_data() -> dict[str, Any]:
        return {"name": f"pos {next(counter)}", "scopes": ["offers", "profile"]}

    async def nothing() -> dict[str, Any]:
        return {}

    async def count(collection: str) -> int:
        return int(await db[collection].count_documents({}))

    shop_side = {"merchant_a", "admin"}
    district_side = {"operator", "admin"}
    return [
        Action("edit merchant profile", {"merchant_a", "operator", "admin"}, lambda: f"/admin/merchants/{SHOP_X}",
               profile_data, lambda: doc("merchants", SHOP_X)),
        Action("create merchant", district_side, lambda: f"/admin/districts/{DISTRICT}/merchants/new",
               new_merchant_data, lambda: ids("merchants", {"district_id": DISTRICT})),
        Action("create offer", shop_side, lambda: f"/admin/merchants/{SHOP_X}/offers/new", new_offer_data,
               lambda: ids("offers", {"merchant_id": SHOP_X})),
        Action("edit offer", shop_side, lambda: f"/admin/offers/{w.offer_id}", offer_data,
               lambda: doc("offers", w.offer_id)),
        Action("publish offer", shop_side, lambda: f"/admin/offers/{w.offer_id}/publish", version_of_offer,
               lambda: doc("offers", w.offer_id), lambda: set_offer(status="draft")),
        Action("withdraw offer", shop_side, lambda: f"/admin/offers/{w.offer_id}/withdraw", version_of_offer,
               lambda: doc("offers", w.offer_id), lambda: set_offer(status="published")),
        Action("feature offer in festival", district_side, lambda: f"/admin/offers/{w.offer_id}/decision",
               decision_data, lambda: doc("offers", w.offer_id), lambda: set_offer(festival_decision="none")),
        Action("toggle sold here", shop_side, lambda: f"/admin/merchants/{SHOP_X}/products/{SHARED_PRODUCT}/sold",
               lambda: _const({"sold": "1"}), lambda: doc("products", SHARED_PRODUCT), without_x),
        Action("create product", shop_side, lambda: f"/admin/merchants/{SHOP_X}/products/new", new_product_data,
               lambda: ids("products", {"owner_merchant_id": SHOP_X})),
        Action("edit product", shop_side, lambda: f"/admin/products/{w.product_id}", product_data,
               lambda: doc("products", w.product_id)),
        Action("create festival", district_side, lambda: "/admin/festivals/new", new_festival_data,
               lambda: count("festivals")),
        Action("edit festival", district_side, lambda: f"/admin/festivals/{w.festival_id}", festival_data,
               lambda: doc("festivals", w.festival_id)),
        Action("set area capacity", district_side, lambda: f"/admin/areas/{AREA}/capacity", capacity_data,
               lambda: doc("areas", AREA)),
        Action("invite merchant", district_side, lambda: "/admin/invite", invite_merchant_data,
               lambda: count("invitations")),
        Action("invite operator", {"admin"}, lambda: "/admin/invite", invite_operator_data,
               lambda: count("invitations")),
        Action("create API token", set(ACTORS) - {"anonymous"}, lambda: "/admin/tokens", token_data,
               lambda: count("api_tokens")),
        # someone else's token is "not found" for you: its existence isn't confirmed either
        Action("revoke API token", {"merchant_a"}, lambda: f"/admin/tokens/{w.token_id}/revoke", nothing,
               lambda: doc("api_tokens", w.token_id), fresh_token, denied={403, 404}),
        Action("register sensor", district_side, lambda: f"/admin/districts/{DISTRICT}/sensors", sensor_data,
               lambda: ids("sensors", {"district_id": DISTRICT})),
        Action("revoke sensor", district_side, lambda: f"/admin/districts/{DISTRICT}/sensors/{w.sensor_id}/revoke",
               nothing, lambda: doc("sensors", w.sensor_id), fresh_sensor),
        Action("set crowd alert rule", district_side, lambda: f"/admin/districts/{DISTRICT}/crowd/rules/{AREA}",
               rule_data, lambda: doc("crowd_alert_rules", AREA)),
        Action("compose push campaign", district_side, lambda: "/admin/campaigns/new", campaign_data,
               lambda: ids("push_campaigns", {"district_ids": {"$in": [DISTRICT]}})),
        Action("approve push campaign", district_side, lambda: f"/admin/campaigns/{w.campaign_id}/approve",
               nothing, lambda: doc("push_campaigns", w.campaign_id), fresh_campaign),
        Action("upload merchant picture", {"merchant_a", "operator", "admin"},
               lambda: f"/admin/images/merchant/{SHOP_X}", alt_data,
               lambda: ids("images", {"owner": f"merchant:{SHOP_X}"}), files=UPLOAD),
        Action("upload product picture", shop_side, lambda: f"/admin/images/product/{w.product_id}", alt_data,
               lambda: ids("images", {"owner": f"product:{w.product_id}"}), files=UPLOAD),
        Action("upload festival picture", district_side, lambda: f"/admin/images/festival/{w.festival_id}",
               alt_data, lambda: ids("images", {"owner": f"festival:{w.festival_id}"}), files=UPLOAD),
        Action("delete picture", {"merchant_a", "operator", "admin"}, lambda: f"/admin/images/{w.image_id}/delete",
               nothing, lambda: doc("images", w.image_id), fresh_image),
        # another shop's coupon is refused next to the code field (NOT_YOUR_OFFER), as a form error
        Action("redeem coupon", shop_side, lambda: "/admin/redeem", redeem_data,
               lambda: doc("coupons", w.coupon_code), fresh_coupon, denied={422}),
        Action("cancel push campaign", district_side, lambda: f"/admin/campaigns/{w.campaign_id}/cancel",
               nothing, lambda: doc("push_campaigns", w.campaign_id), fresh_campaign),
    ]


PHOTO = pictures.photo((400, 300))
UPLOAD = {"image": ("matrix.jpg", PHOTO, "image/jpeg")}


async def _const(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data)


async def test_authorization_matrix(db: Any, world: World, browsers: dict[str, Browser]) -> None:
    table = actions(db, world)
    failures: list[str] = []
    lines: list[str] = []
    cells = 0
    for action in table:
        row = []
        for actor in ACTORS:
            if action.reset is not None:
                await action.reset()
            before = await action.state()
            audit_before = await db.audit.count_documents({})
            response = await browsers[actor].post(action.url(), await action.data(),
                                                  **({"files": action.files} if action.files else {}))
            after = await action.state()
            new_entries = await db.audit.count_documents({}) - audit_before
            cells += 1
            status, location = response.status_code, response.headers.get("location", "")
            if actor in action.allowed:
                ok = status in (200, 303) and not location.startswith("/admin/login") and after != before
                ok = ok and (new_entries == 1 or not action.audited)  # every write leaves one audit entry
                row.append(f"{actor}=ok" if ok else f"{actor}=FAILED({status})")
            elif actor == "anonymous":
                ok = (status == 303 and location.startswith("/admin/login")) or status == 403
                ok = ok and after == before and new_entries == 0
                row.append(f"{actor}={'login' if status == 303 else status}")
            else:
                ok = status in action.denied and after == before and new_entries == 0
                row.append(f"{actor}={status}")
            if not ok:
                failures.append(f"{action.name} as {actor}: HTTP {status} {location} changed={after != before} "
                                f"audit+{new_entries} "
                                f"{response.text[:300]!r}")
        lines.append(f"  {action.name:<26} " + " ".join(row))
    print(f"\nback-office authorization matrix: {len(table)} form actions × {len(ACTORS)} actors = {cells} cells")
    print("\n".join(lines))
    assert cells >= len(table) * 6
    assert not failures, "\n".join(failures)


async def test_every_post_route_of_the_back_office_is_in_the_matrix(db: Any, world: World) -> None:
    """A new form action must join the matrix: the POST routes are compared with the matrix's URLs."""
    from server.web.admin.routes import back_office_routes

    posts = {r.path for r in back_office_routes() if "POST" in (getattr(r, "methods", None) or set())}
    # sign-in, accepting an invitation and signing out act on the caller's own session (tests/web/test_sessions.py)
    own_session = {"/login", "/invite/{token}", "/logout", "/logout-everywhere"}
    covered = {
        "/merchants/{merchant_id}", "/districts/{district_id}/merchants/new", "/merchants/{merchant_id}/offers/new",
        "/offers/{offer_id}", "/offers/{offer_id}/publish", "/offers/{offer_id}/withdraw",
        "/offers/{offer_id}/decision", "/merchants/{merchant_id}/products/{product_id}/sold",
        "/merchants/{merchant_id}/products/new", "/products/{product_id}", "/festivals/new",
        "/festivals/{festival_id}", "/areas/{area_id}/capacity", "/invite", "/tokens", "/tokens/{token_id}/revoke",
        "/districts/{district_id}/sensors", "/districts/{district_id}/sensors/{sensor_id}/revoke",
        "/districts/{district_id}/crowd/rules/{area_id}", "/campaigns/new", "/campaigns/{campaign_id}/approve",
        "/campaigns/{campaign_id}/cancel", "/images/{kind}/{owner_id}", "/images/{image_id}/delete", "/redeem",
    }
    assert posts == covered | own_session
    assert len(actions(db, world)) >= len(covered)
