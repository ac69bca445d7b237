"""Push campaigns in the back office over HTTP: compose → preview → send, the campaign's page and its JSON
counters, who may see what, four-eyes approval (a second app with PUSH_APPROVAL on), cancel, schedule, and a
form that keeps every value when something is wrong."""

from __future__ import annotations

import asyncio
import html
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn

from server.api.live.protocol import UVICORN_WS
from server.asgi import create_app
from server.domain import messages
from server.domain.festivals import service as festivals
from server.domain.i18n import LOCALES
from server.domain.push.campaign import STATS
from server.domain.push.models import TOPICS, PushSubscription
from server.push.encode import Urgency
from server.push.expand import expand_pending
from server.services import embedded
from server.services.redis import connect as connect_redis
from server.web.admin.views_push import STATES
from tests.conftest import RunningApp
from tests.support import make_account
from tests.web.conftest import DISTRICT, OTHER_DISTRICT, Browser, People, signed_in
from tests.web.forms import SHANGHAI, local

SHOWN_LOCALES = ("zh-CN", "zh-HK", "en")
HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
MINE = 3  # subscriptions of this module that a huaqiangbei "offers" campaign reaches


def form(**changes: Any) -> dict[str, Any]:
    """The compose form as a browser sends it (zh-HK left empty: its phones fall back to zh-CN)."""
    data: dict[str, Any] = {
        "title.zh-CN": "华强北周末数码节", "title.zh-HK": "", "title.en": "Huaqiangbei gadget weekend",
        "body.zh-CN": "全场配件八折，周日 22:00 截止。", "body.zh-HK": "",
        "body.en": "20% off accessories until Sunday.",
        "url.zh-CN": "/d/huaqiangbei", "url.zh-HK": "", "url.en": "",
        "image.zh-CN": "", "image.zh-HK": "", "image.en": "",
        "district_ids": [DISTRICT], "topics": ["offers"], "locales": list(SHOWN_LOCALES), "when": "now",
        "send_at": "", "festival_id": "", "ttl_hours": "24", "urgency": "normal", "collapse_topic": "",
    }
    data.update(changes)
    return data


def hidden_form(page: str) -> dict[str, list[str]]:
    """What the preview page's form carries on (as a browser would post it back)."""
    out: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(page):
        if name != "csrf":
            out.setdefault(name, []).append(html.unescape(value))
    return out


def field_error(page: str, field: str) -> str:
    fid = "f-" + field.replace(".", "-")
    match = re.search(r'<p class="error" id="%s-err">([^<]*)</p>' % re.escape(fid), page)
    assert match, f"no error shown for {field}"
    return html.unescape(match.group(1))


def campaign_id_of(location: str) -> str:
    match = re.fullmatch(r"/admin/campaigns/([0-9a-f]{32})\?ok=\w+", location)
    assert match, location
    return match.group(1)


async def count(db: Any, collection: str, query: dict[str, Any]) -> int:
    rows = await (await db[collection].aggregate([{"$match": query}, {"$count": "n"}])).to_list()
    return int(rows[0]["n"]) if rows else 0


@pytest.fixture(scope="module", autouse=True)
async def subscriptions(db: Any) -> AsyncIterator[list[str]]:
    """Phones in three languages for huaqiangbei offers, and two a huaqiangbei offers campaign must not reach;
    what this module stores is removed afterwards."""
    now = datetime.now(UTC)
    before = {d["_id"] async for d in db.push_campaigns.find({}, {"_id": 1})}

    def phone(districts: list[str], topics: list[str], locale: str) -> dict[str, Any]:
        endpoint = f"https://push.example.com/admin-campaigns/{uuid.uuid4().hex}"
        return PushSubscription(uuid.uuid4().hex, endpoint, "p256dh", "auth", "https://push.example.com",
                                tuple(districts), tuple(topics), locale, now, now).to_doc()

    docs = [phone([DISTRICT], ["offers", "festivals"], loc) for loc in SHOWN_LOCALES]
    docs += [phone([OTHER_DISTRICT], ["offers"], "zh-CN"), phone([DISTRICT], ["crowd_alerts"], "zh-CN")]
    await db.push_subscriptions.insert_many(docs)
    yield [d["_id"] for d in docs]
    await db.push_subscriptions.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
    await db.push_campaigns.delete_many({"_id": {"$nin": sorted(before)}})


@pytest.fixture
async def operator(app_server: RunningApp, people: People) -> AsyncIterator[Browser]:
    browser = await signed_in(app_server, people.operator, **{"accept-language": "en"})
    await browser.form_page("/admin/campaigns/new")
    yield browser
    await browser.aclose()


async def expected_audience(db: Any) -> int:
    """Counted here in Python, not with the product's filter, so a wrong filter cannot agree with itself."""
    wanted = 0
    async for sub in db.push_subscriptions.find({}, {"districts": 1, "topics": 1, "locale": 1}):
        if DISTRICT in sub["districts"] and "offers" in sub["topics"] and sub["locale"] in SHOWN_LOCALES:
            wanted += 1
    return wanted


# ---------------------------------------------------------------- compose → preview → send

async def worker_expands(db: Any, redis_url: str) -> None:
    """What a worker's expand loop does within a second of a campaign becoming due."""
    redis = connect_redis(redis_url)
    try:
        await expand_pending(db, redis)
    finally:
        await redis.aclose()


async def test_an_operator_previews_then_sends_and_watches_the_counters(
        db: Any, people: People, app_server: RunningApp, operator: Browser, redis_url: str) -> None:
    page = await operator.form_page("/admin/campaigns/new")
    assert 'href="/admin/campaigns" aria-current="page"' in page  # the menu leads here
    assert f'value="{DISTRICT}" checked' in page and OTHER_DISTRICT not in page  # only its own district
    for topic in TOPICS:
        assert f'name="topics" value="{topic}"' in page
    stored_before = await count(db, "push_campaigns", {})

    preview = await operator.post("/admin/campaigns/new", {**form(), "action": "preview"})
    assert preview.status_code == 200, preview.text[:500]
    assert await count(db, "push_campaigns", {}) == stored_before  # a preview stores nothing
    text = html.unescape(preview.text)
    audience = await expected_audience(db)
    assert audience >= MINE
    assert f"About {audience} subscriptions would get it now" in text
    cards = {loc: text.split(f'id="preview-{loc}"', 1)[1].split("</li>", 1)[0] for loc in SHOWN_LOCALES}
    assert "Phones set to Simplified Chinese" in cards["zh-CN"] and "华强北周末数码节" in cards["zh-CN"]
    # zh-HK has no text of its own: its phones show the zh-CN one, and the page says so
    assert "华强北周末数码节" in cards["zh-HK"] and "shows Simplified Chinese" in cards["zh-HK"]
    assert "Huaqiangbei gadget weekend" in cards["en"] and "20% off accessories" in cards["en"]
    assert "/d/huaqiangbei" in cards["en"]  # the link falls back as well
    for loc, title, body in (("zh-CN", "华强北周末数码节", "全场配件八折，周日 22:00 截止。"),
                             ("en", "Huaqiangbei gadget weekend", "20% off accessories until Sunday.")):
        size = len(json.dumps({"id": "0" * 32, "title": title, "body": body, "url": "/d/huaqiangbei"},
                              ensure_ascii=False, separators=(",", ":")).encode())
        assert f"{size} of 3993 bytes" in cards[loc] and "Fits one push message" in cards[loc]
    assert ">Send now</button>" in preview.text

    carried = hidden_form(preview.text)
    assert carried["title.en"] == ["Huaqiangbei gadget weekend"] and carried["locales"] == list(SHOWN_LOCALES)
    sent = await operator.post("/admin/campaigns/new", {**carried, "action": "send"})
    assert sent.status_code == 303, sent.text[:500]
    campaign_id = campaign_id_of(sent.headers["location"])
    assert sent.headers["location"].endswith("?ok=campaign_sent")
    doc = await db.push_campaigns.find_one({"_id": campaign_id})
    assert doc["status"] == "sending" and doc["created_by"] == people.operator.id
    assert doc["title"] == {"zh-CN": "华强北周末数码节", "en": "Huaqiangbei gadget weekend"}
    assert doc["stage"] == "new" and doc["stats"]["targeted"] == 0  # stored and answered at once, whatever its size
    await worker_expands(db, redis_url)
    assert (await db.push_campaigns.find_one({"_id": campaign_id}))["stats"]["targeted"] == audience
    assert await db.audit.find_one({"action": "push_campaign.create", "target_id": campaign_id})

    detail = await operator.get(sent.headers["location"])
    assert detail.status_code == 200
    assert "Sending has started." in detail.text
    assert f'data-stat="targeted">{audience}<' in detail.text
    assert 'data-state aria-live="polite">Sending<' in detail.text
    assert f'data-stats-url="/admin/campaigns/{campaign_id}/stats"' in detail.text
    assert '<script src="/admin/static/campaigns.js" defer></script>' in detail.text
    assert f'href="/admin/campaigns/{campaign_id}" data-refresh>Refresh</a>' in detail.text  # without JavaScript
    assert 'http-equiv="refresh"' not in detail.text
    assert "Cancel the campaign…" in detail.text
    assert f"/admin/campaigns/{campaign_id}/approve" not in detail.text
    for name in STATS:  # every counter, with what it means
        assert f'data-stat="{name}"' in detail.text
        assert messages.translate(f"stat_{name}_help", "en") in html.unescape(detail.text)

    listing = await operator.get("/admin/campaigns")
    card = listing.text.split(f'id="campaign-{campaign_id}"', 1)[1].split("</li>", 1)[0]
    assert "Sending" in card
    assert html.escape("Huaqiangbei gadget weekend") in card  # in the reader's language
    assert f"<dd>{audience}</dd>" in card

    stats = await operator.get(f"/admin/campaigns/{campaign_id}/stats")
    assert stats.status_code == 200 and stats.headers["content-type"].startswith("application/json")
    body = stats.json()
    assert body["state"] == "sending" and body["stateLabel"] == "Sending" and body["live"] is True
    assert body["targeted"] == audience and body["done"] == 0 and set(body["stats"]) == set(STATS)

    # the worker's outcomes: everyone delivered, one tap
    await db.push_campaigns.update_one({"_id": campaign_id}, {"$inc": {"stats.sent": audience,
                                                                       "stats.delivered": audience,
                                                                       "stats.clicked": 1}})
    body = (await operator.get(f"/admin/campaigns/{campaign_id}/stats")).json()
    assert body["state"] == "sent" and body["live"] is False and body["percent"] == 100
    assert body["stats"]["delivered"] == audience and body["stats"]["clicked"] == 1
    detail = await operator.get(f"/admin/campaigns/{campaign_id}")
    assert 'data-state aria-live="polite">Sent<' in detail.text and "Cancel the campaign…" not in detail.text
    assert f'<progress data-progress value="{audience}" max="{audience}"' in detail.text


async def test_only_operators_of_its_districts_and_admins_see_a_campaign(
        db: Any, people: People, app_server: RunningApp, operator: Browser) -> None:
    sent = await operator.post("/admin/campaigns/new", {**form(**{"title.zh-CN": "只给华强北"}), "action": "send"})
    campaign_id = campaign_id_of(sent.headers["location"])
    other = await signed_in(app_server, people.other_operator)
    merchant = await signed_in(app_server, people.merchant_a)
    admin = await signed_in(app_server, people.admin)
    anonymous = Browser(app_server)
    try:
        for path in (f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/stats"):
            assert (await other.get(path)).status_code == 403, path
            assert (await merchant.get(path)).status_code == 403, path
        assert "只给华强北" not in (await other.get("/admin/campaigns")).text
        assert (await other.get("/admin/campaigns/" + "0" * 32)).status_code == 404
        assert (await other.get("/admin/campaigns/" + "0" * 32 + "/stats")).status_code == 404
        for path in ("/admin/campaigns", "/admin/campaigns/new"):
            assert (await merchant.get(path)).status_code == 403, path
        assert 'href="/admin/campaigns"' not in (await merchant.get("/admin/")).text
        stats = await anonymous.get(f"/admin/campaigns/{campaign_id}/stats")
        assert stats.status_code == 401 and stats.json() == {"error": "unauthenticated"}
        page = await anonymous.get(f"/admin/campaigns/{campaign_id}")
        assert page.status_code == 303 and page.headers["location"].startswith("/admin/login")

        stored = await count(db, "push_campaigns", {})
        await merchant.form_page("/admin/")
        denied = await merchant.post("/admin/campaigns/new", {**form(), "action": "send"})
        assert denied.status_code == 403
        await other.form_page("/admin/")
        denied = await other.post("/admin/campaigns/new", {**form(), "action": "send"})  # not its district
        assert denied.status_code == 403
        assert (await other.post(f"/admin/campaigns/{campaign_id}/cancel")).status_code == 403
        no_csrf = await operator.post("/admin/campaigns/new", {**form(), "action": "send"}, csrf=False)
        assert no_csrf.status_code == 403
        assert await count(db, "push_campaigns", {}) == stored
        assert (await db.push_campaigns.find_one({"_id": campaign_id}))["status"] == "sending"

        assert "只给华强北" in (await admin.get("/admin/campaigns")).text
        assert (await admin.get(f"/admin/campaigns/{campaign_id}/stats")).json()["id"] == campaign_id
    finally:
        for browser in (other, merchant, admin, anonymous):
            await browser.aclose()


# ---------------------------------------------------------------- problems, scheduling, cancelling

async def test_problems_are_shown_next_to_their_fields_and_nothing_typed_is_lost(
        db: Any, operator: Browser) -> None:
    stored = await count(db, "push_campaigns", {})
    bad = form(**{"title.zh-CN": "", "title.en": "Keep <me>", "url.zh-CN": "https://evil.example/",
                  "body.en": "Line one\nline two", "topics": [], "ttl_hours": "abc", "when": "later", "send_at": "",
                  "collapse_topic": "has space", "image.en": "http://plain.example/x.png"})
    for action in ("preview", "send"):
        page = await operator.post("/admin/campaigns/new", {**bad, "action": action})
        assert page.status_code == 422, action
        assert field_error(page.text, "title.zh-CN") == "This field is required."
        assert field_error(page.text, "url.zh-CN") == "The link must be a path in this app, starting with /."
        assert field_error(page.text, "image.en") == "The image must be an https URL or an app path starting with /."
        assert field_error(page.text, "topics") == "This field is required."
        assert field_error(page.text, "ttl_hours") == "Enter a whole number."
        assert field_error(page.text, "send_at") == "This field is required."
        assert field_error(page.text, "collapse_topic") == "The collapse topic is at most 32 letters, digits, - or _."
        assert 'href="#f-title-zh-CN"' in page.text  # the summary links to the field
        for kept in ('value="Keep &lt;me&gt;"', 'value="https://evil.example/"', ">Line one\nline two</textarea>",
                     'value="abc"', 'value="has space"', 'name="when" value="later" checked',
                     f'value="{DISTRICT}" checked', 'value="en" checked'):
            assert kept in page.text, kept
    past = await operator.post("/admin/campaigns/new", {
        **form(when="later", send_at=local(datetime.now(UTC) - timedelta(hours=2))), "action": "send"})
    assert past.status_code == 422 and field_error(past.text, "send_at") == "The send time has passed."
    no_language = await operator.post("/admin/campaigns/new", {**form(locales=[]), "action": "preview"})
    assert no_language.status_code == 422 and field_error(no_language.text, "locales") == "This field is required."
    assert await count(db, "push_campaigns", {}) == stored

    # "back to edit" from a preview shows the form with every value it carried
    preview = await operator.post("/admin/campaigns/new", {**form(**{"body.en": "Two\nlines"}, urgency="high"),
                                                          "action": "preview"})
    edit = await operator.post("/admin/campaigns/new", {**hidden_form(preview.text), "action": "edit"})
    assert edit.status_code == 200
    assert 'value="Huaqiangbei gadget weekend"' in edit.text and ">Two\nlines</textarea>" in edit.text
    assert '<option value="high" selected>' in edit.text and 'name="topics" value="offers" checked' in edit.text
    assert await count(db, "push_campaigns", {}) == stored


async def test_a_campaign_scheduled_ahead_waits_and_its_ttl_ends_with_the_linked_festival(
        db: Any, people: People, operator: Browser) -> None:
    today = datetime.now(SHANGHAI).date()
    festival = await festivals.create(db, people.admin.actor(), f"push-console-{uuid.uuid4().hex[:6]}",
                                      festivals.FestivalInput(name={"zh-CN": "推送测试节", "en": "Push test fair"},
                                                              kind="shopping", starts_on=today,
                                                              ends_on=today + timedelta(days=1),
                                                              district_ids=[DISTRICT]))
    page = await operator.form_page("/admin/campaigns/new")
    assert f'<option value="{festival.id}">Push test fair' in page
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    data = form(when="later", send_at=local(at), ttl_hours="672", festival_id=festival.id,
                urgency=Urgency.LOW.value, collapse_topic="hqb-weekend")
    preview = await operator.post("/admin/campaigns/new", {**data, "action": "preview"})
    assert preview.status_code == 200 and ">Schedule</button>" in preview.text
    assert "ends with the festival at the latest" in preview.text
    sent = await operator.post("/admin/campaigns/new", {**hidden_form(preview.text), "action": "send"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("?ok=campaign_scheduled")
    campaign_id = campaign_id_of(sent.headers["location"])
    doc = await db.push_campaigns.find_one({"_id": campaign_id})
    assert doc["send_at_ts"] == at.timestamp()  # Shenzhen time in the form, UTC in storage
    assert doc["ttl"] == int(festival.ends_at.timestamp() - at.timestamp())  # cut at the festival's end
    assert doc["festival_id"] == festival.id and doc["urgency"] == "low" and doc["collapse_topic"] == "hqb-weekend"
    assert doc["stage"] == "new" and doc["stats"]["targeted"] == 0  # nothing goes out before its time
    detail = await operator.get(sent.headers["location"])
    assert 'data-state aria-live="polite">Scheduled<' in detail.text and "Scheduled: it goes out" in detail.text
    assert "Push test fair" in detail.text and "hqb-weekend" in detail.text
    body = (await operator.get(f"/admin/campaigns/{campaign_id}/stats")).json()
    assert body["state"] == "scheduled" and body["live"] is True
    assert "Scheduled" in (await operator.get("/admin/campaigns")).text


async def test_cancel_stops_a_campaign(db: Any, operator: Browser) -> None:
    at = datetime.now(UTC) + timedelta(days=1)
    sent = await operator.post("/admin/campaigns/new", {**form(when="later", send_at=local(at)), "action": "send"})
    campaign_id = campaign_id_of(sent.headers["location"])
    detail = await operator.get(f"/admin/campaigns/{campaign_id}")
    assert "Cancel it? Messages not yet sent won" in html.unescape(detail.text)  # the confirmation step
    assert (await operator.post(f"/admin/campaigns/{campaign_id}/cancel", csrf=False)).status_code == 403
    cancelled = await operator.post(f"/admin/campaigns/{campaign_id}/cancel")
    assert cancelled.status_code == 303 and cancelled.headers["location"].endswith("?ok=campaign_cancelled")
    assert (await db.push_campaigns.find_one({"_id": campaign_id}))["status"] == "cancelled"
    assert await db.audit.find_one({"action": "push_campaign.cancel", "target_id": campaign_id})
    detail = await operator.get(cancelled.headers["location"])
    assert 'data-state aria-live="polite">Cancelled<' in detail.text and "Cancel the campaign…" not in detail.text
    assert (await operator.get(f"/admin/campaigns/{campaign_id}/stats")).json()["live"] is False
    # rejecting is for campaigns awaiting approval only
    again = await operator.post(f"/admin/campaigns/{campaign_id}/cancel", {"reject": "1"})
    assert again.status_code == 422 and "This campaign is not awaiting approval." in again.text


# ---------------------------------------------------------------- four-eyes

@pytest.fixture(scope="module")
async def approval_app(app_server: RunningApp) -> AsyncIterator[RunningApp]:
    """The same database behind a second app whose settings ask for a second operator's approval."""
    settings = replace(app_server.settings, push_approval=True)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, load_content_on_start=False), host="127.0.0.1",
                                           port=embedded.free_port(), log_level="warning", lifespan="on",
                                           **UVICORN_WS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield RunningApp(f"http://127.0.0.1:{server.config.port}", settings, app_server.db_name)
    server.should_exit = True
    await task


async def test_with_four_eyes_another_operator_approves_or_rejects(
        db: Any, people: People, approval_app: RunningApp, redis_url: str) -> None:
    second = await make_account(db, "operator", district_ids=[DISTRICT])
    author = await signed_in(approval_app, people.operator, **{"accept-language": "en"})
    reviewer = await signed_in(approval_app, second, **{"accept-language": "en"})
    other = await signed_in(approval_app, people.other_operator, **{"accept-language": "en"})
    try:
        page = await author.form_page("/admin/campaigns/new")
        assert "Another operator of these districts must approve it" in page
        preview = await author.post("/admin/campaigns/new", {**form(**{"title.zh-CN": "待批准"}), "action": "preview"})
        assert ">Submit for approval</button>" in preview.text
        sent = await author.post("/admin/campaigns/new", {**hidden_form(preview.text), "action": "send"})
        assert sent.headers["location"].endswith("?ok=campaign_awaiting")
        campaign_id = campaign_id_of(sent.headers["location"])
        assert (await db.push_campaigns.find_one({"_id": campaign_id}))["status"] == "awaiting_approval"

        own = await author.get(f"/admin/campaigns/{campaign_id}")
        assert 'data-state aria-live="polite">Awaiting approval<' in own.text
        assert "Another operator must approve it." in own.text
        assert f"/admin/campaigns/{campaign_id}/approve" not in own.text
        refused = await author.post(f"/admin/campaigns/{campaign_id}/approve")  # the creator can't, even by hand
        assert refused.status_code == 422 and "Another operator must approve it." in refused.text
        assert (await db.push_campaigns.find_one({"_id": campaign_id}))["status"] == "awaiting_approval"
        assert (await other.post(f"/admin/campaigns/{campaign_id}/approve")).status_code == 403

        review = await reviewer.form_page(f"/admin/campaigns/{campaign_id}")
        assert f'action="/admin/campaigns/{campaign_id}/approve"' in review and ">Reject</button>" in review
        assert people.operator.email in review  # who composed it
        approved = await reviewer.post(f"/admin/campaigns/{campaign_id}/approve")
        assert approved.status_code == 303 and approved.headers["location"].endswith("?ok=campaign_approved")
        doc = await db.push_campaigns.find_one({"_id": campaign_id})
        assert doc["status"] == "sending" and doc["approved_by"] == second.id
        await worker_expands(db, redis_url)  # due on approval: the workers expand it
        assert (await db.push_campaigns.find_one({"_id": campaign_id}))["stats"]["targeted"] == \
            await expected_audience(db)
        assert second.email in (await reviewer.get(f"/admin/campaigns/{campaign_id}")).text

        sent = await author.post("/admin/campaigns/new", {**form(**{"title.zh-CN": "会被拒绝"}), "action": "send"})
        rejected_id = campaign_id_of(sent.headers["location"])
        rejected = await reviewer.post(f"/admin/campaigns/{rejected_id}/cancel", {"reject": "1"})
        assert rejected.headers["location"].endswith("?ok=campaign_rejected")
        assert (await db.push_campaigns.find_one({"_id": rejected_id}))["status"] == "cancelled"
        assert "Rejected: it won" in html.unescape((await reviewer.get(rejected.headers["location"])).text)
    finally:
        for browser in (author, reviewer, other):
            await browser.aclose()


# ---------------------------------------------------------------- texts

def test_every_campaign_text_exists_in_three_languages() -> None:
    from pathlib import Path

    from server.web.admin.campaign_form import URGENCIES

    keys = {f"campaign_state_{s}" for s in STATES} | {f"topic_{t}" for t in TOPICS}
    keys |= {f"urgency_{u}" for u in URGENCIES} | {f"stat_{s}" for s in STATS} | {f"stat_{s}_help" for s in STATS}
    keys |= {f"locale_{loc}" for loc in LOCALES}
    templates = Path(__file__).parents[2] / "server" / "web" / "admin" / "templates"
    for path in templates.glob("campaign*.html"):
        keys |= set(re.findall(r"""\bt\(["']([a-zA-Z0-9_-]+)["']\s*[,)]""", path.read_text()))
    for key in keys:
        texts = messages.MESSAGES.get(key)
        assert texts and set(texts) == set(LOCALES) and all(texts.values()), key
    assert {"campaign_sent", "campaign_scheduled", "campaign_awaiting", "campaign_approved", "campaign_rejected",
            "campaign_cancelled"} <= messages.NOTICES
