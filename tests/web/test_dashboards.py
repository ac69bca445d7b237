"""The festival dashboard of operators and admins, and merchants' insights: server-rendered, charts as SVG with their
numbers in the page, each district's card for its own operators only."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from server.domain.crowd import alerts, sensors
from server.domain.festivals import service as festivals
from server.domain.offers import repository as offer_repository
from server.domain.offers import service as offers
from server.domain.push import campaign_service
from server.domain.push.campaign import CampaignInput
from tests.conftest import RunningApp
from tests.web.conftest import DISTRICT, OTHER_DISTRICT, SHOP_X, SHOP_Y, Browser, People, signed_in
from tests.web.test_crowd_and_hours import crowd_leftovers  # noqa: F401  (the readings posted here go too)

AREA = "hqb-seg-square"  # other crowd tests post to other areas


async def browser(app_server: RunningApp, account: Any) -> Browser:
    return await signed_in(app_server, account, **{"accept-language": "en"})


def card_of(page: str, district_id: str) -> str:
    start = page.index(f'id="district-{district_id}"')
    return page[start:page.index("</article>", start)]


async def festival_with_offer(db: Any, people: People) -> tuple[str, str]:
    today = date.today()
    fest = await festivals.create(db, people.admin.actor(), f"dash-{uuid.uuid4().hex[:6]}", festivals.FestivalInput(
        name={"zh-CN": "看板节", "en": "Dashboard Fair"}, kind="shopping", starts_on=today - timedelta(days=1),
        ends_on=today + timedelta(days=5), district_ids=[DISTRICT]))
    now = datetime.now(UTC)
    offer = await offers.create(db, people.merchant_a.actor(), SHOP_X, offers.OfferInput(
        title={"zh-CN": "看板优惠", "en": "Dashboard deal"}, kind="percent_off", percent_off=20,
        valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=3), festival_id=fest.id))
    await offers.transition(db, people.merchant_a.actor(), offer.id, "publish", 1)
    published = (await offer_repository.by_ids(db, [offer.id]))[offer.id]
    await offer_repository.bump_daily(db, published, "claims", now, by=7)
    await offer_repository.bump_daily(db, published, "redemptions", now, by=2)
    return fest.id, offer.id


async def test_operator_dashboard_has_one_card_per_district_with_charts_alerts_campaigns_and_offers(
        db: Any, people: People, app_server: RunningApp, http: httpx.AsyncClient) -> None:
    operator = await browser(app_server, people.operator)
    await alerts.set_rule(db, people.operator.actor(), AREA, "BUSY", "MODERATE", 5)
    _, key = await sensors.register(db, people.operator.actor(), AREA, "camera", "SEG plaza")
    capacity = (await db.areas.find_one({"_id": AREA}))["capacity"]
    reading = {"readings": [{"areaId": AREA, "at": datetime.now(UTC).isoformat(), "count": round(capacity * 0.8)}]}
    assert (await http.post("/ingest/crowd", json=reading, headers={"authorization": f"Bearer {key}"})).status_code \
        == 200
    campaign = await campaign_service.create(db, people.operator.actor(), CampaignInput(
        title={"zh-CN": "看板推送", "en": "Dashboard push"}, body={"zh-CN": "正文", "en": "Body"},
        district_ids=[DISTRICT], topics=["offers"]), now=datetime.now(UTC))
    await db.push_campaigns.update_one({"_id": campaign.id}, {"$set": {
        "stats.targeted": 40, "stats.sent": 38, "stats.delivered": 30, "stats.clicked": 6}})
    await festival_with_offer(db, people)

    response = await operator.get("/admin/")
    assert response.status_code == 200
    page = response.text
    assert "District operations" in page and "Merchant back office" not in page
    assert f'id="district-{DISTRICT}"' in page and f'id="district-{OTHER_DISTRICT}"' not in page
    card = card_of(page, DISTRICT)
    # the crowd now, and today's curve of each area as an SVG drawn on the server, its points in the markup
    area_now = card.split(f'<li data-area="{AREA}">', 1)[1].split("</li>", 1)[0]
    assert '<strong class="percent">80.0%</strong> BUSY' in area_now
    assert card.count('class="pygal-chart chart-crowd-day"') >= 1
    area_chart = card.split(f'<figure class="chart" data-area="{AREA}">', 1)[1].split("</figure>", 1)[0]
    assert "<svg" in area_chart and 'class="dot' in area_chart and "Alert at 70% (BUSY)" in area_chart
    assert "<style" not in page and " style=" not in page and "<script>" not in page
    # the alert fired by that reading, the campaign's funnel, the festival's offers by claims and redemptions
    alerts_part = card.split("Alerts today", 1)[1].split("</section>", 1)[0]
    assert "BUSY (80%)" in alerts_part
    assert 'class="pygal-chart chart-funnel"' in card and "Dashboard push" in card
    assert re.search(r"Dashboard push.*?<td>40</td><td>38</td><td>30</td><td>6</td>", card, re.S)
    assert "Dashboard Fair: offers by claims and redemptions" in card
    assert 'class="pygal-chart chart-offers"' in card
    assert re.search(r"Dashboard deal</th><td>7</td><td>2</td>", card)
    await operator.aclose()


async def test_cards_are_for_the_districts_operators_and_admins(people: People, app_server: RunningApp) -> None:
    operator, other = await browser(app_server, people.operator), await browser(app_server, people.other_operator)
    admin, merchant = await browser(app_server, people.admin), await browser(app_server, people.merchant_a)
    fragment = await operator.get(f"/admin/districts/{DISTRICT}/card")
    assert fragment.status_code == 200 and "<html" not in fragment.text and "chart-crowd-day" in fragment.text
    assert (await operator.get(f"/admin/districts/{OTHER_DISTRICT}/card")).status_code == 403
    assert (await other.get(f"/admin/districts/{DISTRICT}/card")).status_code == 403
    assert (await merchant.get(f"/admin/districts/{DISTRICT}/card")).status_code == 403
    assert (await admin.get(f"/admin/districts/{OTHER_DISTRICT}/card")).status_code == 200
    home = (await admin.get("/admin/")).text
    assert home.count('class="card district-card"') == 8 and "Platform administration" in home
    mine = (await merchant.get("/admin/")).text
    assert "district-card" not in mine and "Merchant back office" in mine
    assert f"/admin/merchants/{SHOP_X}/insights" in mine
    anonymous = await httpx.AsyncClient(base_url=app_server.url).get(f"/admin/districts/{DISTRICT}/card")
    assert anonymous.status_code == 303
    for b in (operator, other, admin, merchant):
        await b.aclose()


async def test_chart_css_and_script_come_from_the_app(people: People, app_server: RunningApp) -> None:
    operator = await browser(app_server, people.operator)
    css = await operator.get("/admin/static/charts.css")
    assert css.headers["content-type"].startswith("text/css") and ".chart-crowd-day .axis" in css.text
    assert "#chart-" not in css.text
    script = await operator.get("/admin/static/dashboard.js")
    assert script.headers["content-type"].startswith("text/javascript") and "data-card-src" in script.text
    page = await operator.get("/admin/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/admin/static/dashboard.js" defer></script>' in page.text
    await operator.aclose()


async def test_merchant_insights_show_each_offers_funnel_and_when_to_staff(
        db: Any, people: People, app_server: RunningApp) -> None:
    _, offer_id = await festival_with_offer(db, people)
    merchant, other = await browser(app_server, people.merchant_a), await browser(app_server, people.merchant_b)
    response = await merchant.get(f"/admin/merchants/{SHOP_X}/insights")
    assert response.status_code == 200
    page = response.text
    panel = page.split(f'id="offer-{offer_id}"', 1)[1].split("</article>", 1)[0]
    assert "Dashboard deal: last 30 days" in panel and 'class="pygal-chart chart-offer-days"' in panel
    assert panel.count('class="dot') >= 30 * 4  # four series of 30 days
    assert "Claims 7 → Redemptions 2" in panel
    assert re.search(r'<tr><th scope="row">[0-9-]{10}</th><td>0</td><td>0</td><td>7</td><td>2</td></tr>', panel)
    staffing = page.split('id="staffing-title"', 1)[1].split("</section>", 1)[0]
    assert 'class="pygal-chart chart-staffing"' in staffing
    assert staffing.count("<tr><th scope=\"row\">") == 7  # today and the six days after
    assert (await other.get(f"/admin/merchants/{SHOP_X}/insights")).status_code == 403
    assert (await merchant.get(f"/admin/merchants/{SHOP_Y}/insights")).status_code == 403
    operator = await browser(app_server, people.other_operator)
    assert (await operator.get(f"/admin/merchants/{SHOP_X}/insights")).status_code == 403
    for b in (merchant, other, operator):
        await b.aclose()
