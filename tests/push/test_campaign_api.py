"""Campaign GraphQL over HTTP against the real app: scheduling, four-eyes approval, previews, the audience
estimate, images, the operator's list, and the display status."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from server.api.ids import to_global
from server.api.live.protocol import UVICORN_WS
from server.asgi import create_app
from server.domain.accounts import service as accounts
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.domain.push.models import PushSubscription, subscription_id
from server.push.encode import MAX_PLAINTEXT
from server.push.expand import expand_pending
from server.services import embedded
from server.services.redis import connect as connect_redis
from tests.conftest import RunningApp, gql
from tests.support import make_account

HQB, FUTIAN = "huaqiangbei", "futian-cbd"
QUIET = "dalang-fashion-town"  # no other test targets it: the audience deltas below are this test's own

CAMPAIGN_FIELDS = """id status title body url image locale sendAt source approved canApprove districtIds topics
  stats { targeted sent delivered }"""
CREATE = f"""mutation ($input: CampaignInput!) {{ createCampaign(input: $input) {{
  campaign {{ {CAMPAIGN_FIELDS} }} errors {{ field code message }} }} }}"""
APPROVE = f"""mutation ($id: ID!) {{ approveCampaign(id: $id) {{
  campaign {{ {CAMPAIGN_FIELDS} }} errors {{ field code }} }} }}"""
CANCEL = "mutation ($id: ID!) { cancelCampaign(id: $id) { campaign { status } errors { code } } }"
STATS = f"query ($id: ID!) {{ campaignStats(id: $id) {{ campaign {{ {CAMPAIGN_FIELDS} }} errors {{ code }} }} }}"
LIST = "query ($first: Int) { campaigns(first: $first) { campaigns { id status canApprove } errors { code } } }"
PREVIEW = """query ($input: CampaignInput!) { previewCampaign(input: $input) {
  previews { locale title body url image payloadBytes fits } audience errors { field code } } }"""
INBOX = """query ($d: [ID!]!, $locale: String) { inbox(districts: $d, locale: $locale, first: 50) {
  edges { node { id title image } } } }"""


def campaign_input(district: str = HQB, **changes: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    base = {"title": {"zhCN": f"华强北电子节 {tag}", "en": f"HQB festival {tag}"},
            "body": {"zhCN": "今晚开幕", "zhHK": "今晚開幕"}, "url": {"zhCN": "/festivals"},
            "districtIds": [to_global("District", district)], "topics": ["FESTIVALS"]}
    return base | changes


async def bearer(db: Any, account: Any, scopes: tuple[str, ...] = ("districts",)) -> dict[str, str]:
    token = await accounts.create_token(db, account.actor(), "campaigns", list(scopes))
    return {"authorization": f"Bearer {token.secret}"}


async def operator(db: Any, *districts: str) -> dict[str, str]:
    return await bearer(db, await make_account(db, "operator", district_ids=list(districts)))


@pytest.fixture(scope="module")
async def approval_app(app_server: RunningApp) -> AsyncIterator[str]:
    """A second web process on the same database and Redis, with four-eyes approval (PUSH_APPROVAL) on."""
    settings = replace(app_server.settings, push_approval=True)
    app = create_app(settings, load_content_on_start=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=embedded.free_port(), log_level="warning",
                                           lifespan="on", **UVICORN_WS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    await task


@pytest.fixture
def db(app_server: RunningApp, db_client: Any) -> Any:
    return db_client[app_server.db_name]


async def create(http: httpx.AsyncClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    body = await gql(http, CREATE, {"input": campaign_input(**changes)}, headers)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["createCampaign"]
    return payload


async def test_a_scheduled_campaign_waits_for_its_time(http: httpx.AsyncClient, db: Any) -> None:
    hqb = await operator(db, HQB)
    send_at = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    made = await create(http, hqb, sendAt=send_at.isoformat())
    assert made["errors"] == []
    campaign = made["campaign"]
    assert campaign["status"] == "SCHEDULED" and datetime.fromisoformat(campaign["sendAt"]) == send_at
    assert campaign["source"] == "OPERATOR" and campaign["approved"] is False and campaign["canApprove"] is False
    stored = await db.push_campaigns.find_one({"_id": _key(campaign["id"])})
    assert stored["stage"] == "new"  # not expanded before its time
    listed = await gql(http, INBOX, {"d": [to_global("District", HQB)]})
    assert campaign["id"] not in [e["node"]["id"] for e in listed["data"]["inbox"]["edges"]]
    stats = (await gql(http, STATS, {"id": campaign["id"]}, hqb))["data"]["campaignStats"]
    assert stats["campaign"]["status"] == "SCHEDULED"

    past = await create(http, hqb, sendAt=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert past == {"campaign": None, "errors": [{"field": "sendAt", "code": "push_send_at_past",
                                                   "message": past["errors"][0]["message"]}]}
    too_far = await create(http, hqb, sendAt=(datetime.now(UTC) + timedelta(days=40)).isoformat())
    assert [(e["field"], e["code"]) for e in too_far["errors"]] == [("sendAt", "push_send_at_too_far")]

    cancelled = await gql(http, CANCEL, {"id": campaign["id"]}, hqb)
    assert cancelled["data"]["cancelCampaign"] == {"campaign": {"status": "CANCELLED"}, "errors": []}


def _key(global_id: str) -> str:
    from server.api.ids import from_global

    return from_global(global_id)[1]


async def worker_expands(db: Any, redis_url: str) -> None:
    """What a worker's expand loop does within a second of a campaign becoming due."""
    redis = connect_redis(redis_url)
    try:
        await expand_pending(db, redis)
    finally:
        await redis.aclose()


async def test_status_follows_the_sending(http: httpx.AsyncClient, db: Any, redis_url: str) -> None:
    """Stored at once and SENDING; once the worker expanded it, to nobody it is SENT, to one subscriber it is
    SENDING until that one has an outcome."""
    quiet = await operator(db, QUIET)
    alone = subscription(uuid.uuid4().hex, [QUIET], ["offers"], "zh-HK")
    await db[SUBSCRIPTIONS].insert_one(alone)
    try:
        nobody = await create(http, quiet, district=QUIET, topics=["CROWD_ALERTS"])
        assert nobody["campaign"]["status"] == "SENDING" and nobody["campaign"]["stats"]["targeted"] == 0
        one = await create(http, quiet, district=QUIET, topics=["OFFERS"], locales=["zh-HK"])
        assert one["campaign"]["status"] == "SENDING" and one["campaign"]["stats"]["targeted"] == 0
        await worker_expands(db, redis_url)
        for made, status, targeted in ((nobody, "SENT", 0), (one, "SENDING", 1)):
            now = (await gql(http, STATS, {"id": made["campaign"]["id"]}, quiet))["data"]["campaignStats"]["campaign"]
            assert now["status"] == status and now["stats"]["targeted"] == targeted
        await db.push_campaigns.update_one({"_id": _key(one["campaign"]["id"])},
                                           {"$inc": {"stats.sent": 1, "stats.delivered": 1}})
        done = (await gql(http, STATS, {"id": one["campaign"]["id"]}, quiet))["data"]["campaignStats"]["campaign"]
        assert done["status"] == "SENT" and done["stats"] == {"targeted": 1, "sent": 1, "delivered": 1}
    finally:
        await db[SUBSCRIPTIONS].delete_one({"_id": alone["_id"]})


async def test_four_eyes_approval(approval_app: str, db: Any, redis_url: str) -> None:
    author = await make_account(db, "operator", district_ids=[HQB])
    mine, colleague = await bearer(db, author), await operator(db, HQB)
    elsewhere, admin = await operator(db, FUTIAN), await bearer(db, await make_account(db, "admin"))
    async with httpx.AsyncClient(base_url=approval_app, timeout=30) as http:
        made = await create(http, mine)
        campaign = made["campaign"]
        assert made["errors"] == [] and campaign["status"] == "AWAITING_APPROVAL" and campaign["approved"] is False
        assert campaign["canApprove"] is False  # the author may not approve it
        stored = await db.push_campaigns.find_one({"_id": _key(campaign["id"])})
        assert stored["stage"] == "new" and stored["created_by"] == author.id
        listed = await gql(http, INBOX, {"d": [to_global("District", HQB)]})
        assert campaign["id"] not in [e["node"]["id"] for e in listed["data"]["inbox"]["edges"]]

        own = (await gql(http, APPROVE, {"id": campaign["id"]}, mine))["data"]["approveCampaign"]
        assert own == {"campaign": None, "errors": [{"field": "id", "code": "push_own_campaign"}]}
        for who, code in ((elsewhere, "FORBIDDEN"), ({}, "UNAUTHENTICATED")):
            refused = (await gql(http, APPROVE, {"id": campaign["id"]}, who))["data"]["approveCampaign"]
            assert refused == {"campaign": None, "errors": [{"field": "", "code": code}]}
        theirs = (await gql(http, LIST, {"first": 50}, colleague))["data"]["campaigns"]["campaigns"]
        assert {"id": campaign["id"], "status": "AWAITING_APPROVAL", "canApprove": True} in theirs

        approved = (await gql(http, APPROVE, {"id": campaign["id"]}, colleague))["data"]["approveCampaign"]
        assert approved["errors"] == [] and approved["campaign"]["approved"] is True
        assert approved["campaign"]["status"] == "SENDING"  # released; the workers expand it
        await worker_expands(db, redis_url)
        stored = await db.push_campaigns.find_one({"_id": _key(campaign["id"])})
        assert stored["stage"] == "expanded" and stored["approved_by"] != author.id
        again = (await gql(http, APPROVE, {"id": campaign["id"]}, admin))["data"]["approveCampaign"]
        assert again == {"campaign": None, "errors": [{"field": "id", "code": "push_not_awaiting_approval"}]}
        listed = await gql(http, INBOX, {"d": [to_global("District", HQB)]})
        assert campaign["id"] in [e["node"]["id"] for e in listed["data"]["inbox"]["edges"]]

        # approved before its send time: it stays scheduled, and nothing is expanded yet
        later = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        scheduled = (await create(http, mine, sendAt=later.isoformat()))["campaign"]
        released = (await gql(http, APPROVE, {"id": scheduled["id"]}, admin))["data"]["approveCampaign"]
        assert released["campaign"]["status"] == "SCHEDULED"
        assert datetime.fromisoformat(released["campaign"]["sendAt"]) == later
        assert (await db.push_campaigns.find_one({"_id": _key(scheduled["id"])}))["stage"] == "new"


async def test_preview_per_locale_with_fallback_and_audience(http: httpx.AsyncClient, db: Any) -> None:
    quiet = await operator(db, QUIET)
    image = "https://img.shangquan.example/dalang.jpg"
    variables = {"input": campaign_input(
        QUIET, title={"zhCN": "大浪时尚周", "en": "Dalang fashion week"}, body={"zhCN": "新品发布"},
        image={"zhCN": image}, url={"zhCN": "/festivals", "en": "/festivals?lang=en"}, topics=["OFFERS"])}
    before = (await gql(http, PREVIEW, variables, quiet))["data"]["previewCampaign"]
    assert before["errors"] == []
    previews = {p["locale"]: p for p in before["previews"]}
    assert set(previews) == {"zh-CN", "zh-HK", "en"}
    assert previews["zh-HK"] | {"payloadBytes": 0} == {
        "locale": "zh-HK", "title": "大浪时尚周", "body": "新品发布", "url": "/festivals", "image": image,
        "payloadBytes": 0, "fits": True}  # no zh-HK texts: zh-CN's
    assert (previews["en"]["title"], previews["en"]["body"], previews["en"]["url"]) == \
        ("Dalang fashion week", "新品发布", "/festivals?lang=en")
    for p in previews.values():  # the size is that of the message a subscriber would decrypt
        message = {"id": "0" * 32, "title": p["title"], "body": p["body"], "url": p["url"], "image": p["image"]}
        assert p["payloadBytes"] == len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())

    # three subscriptions it reaches, and three it does not (other district, topic, locale)
    ids = [uuid.uuid4().hex for _ in range(6)]
    docs = [subscription(ids[0], [QUIET], ["offers"], "zh-CN"), subscription(ids[1], [QUIET, HQB], ["offers"], "en"),
            subscription(ids[2], [QUIET], ["offers", "festivals"], "zh-HK"),
            subscription(ids[3], [HQB], ["offers"], "zh-CN"), subscription(ids[4], [QUIET], ["festivals"], "en"),
            subscription(ids[5], [QUIET], ["offers"], "zh-HK")]
    await db[SUBSCRIPTIONS].insert_many(docs)
    try:
        after = (await gql(http, PREVIEW, variables, quiet))["data"]["previewCampaign"]
        assert after["audience"] - before["audience"] == 4
        english = {"input": variables["input"] | {"locales": ["en", "zh-CN"]}}
        narrowed = (await gql(http, PREVIEW, english, quiet))["data"]["previewCampaign"]
        assert [p["locale"] for p in narrowed["previews"]] == ["en", "zh-CN"]
        reach = len(await db[SUBSCRIPTIONS].find(
            {"districts": {"$in": [QUIET]}, "topics": {"$in": ["offers"]}, "locale": {"$in": ["en", "zh-CN"]}},
            {"_id": 1}).to_list())
        assert narrowed["audience"] == reach and after["audience"] - narrowed["audience"] >= 2
    finally:
        await db[SUBSCRIPTIONS].delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
    assert await db.push_campaigns.find_one({"title.en": "Dalang fashion week"}) is None  # nothing stored

    elsewhere = await operator(db, FUTIAN)
    refused = (await gql(http, PREVIEW, variables, elsewhere))["data"]["previewCampaign"]
    assert refused == {"previews": [], "audience": None, "errors": [{"field": "", "code": "FORBIDDEN"}]}
    bad = (await gql(http, PREVIEW, {"input": variables["input"] | {"title": {"en": "x"}}}, quiet))
    assert bad["data"]["previewCampaign"]["errors"] == [{"field": "title.zh-CN", "code": "required"}]


async def test_preview_flags_a_locale_too_large_for_one_push(http: httpx.AsyncClient, db: Any) -> None:
    quiet = await operator(db, QUIET)
    # 950 four-byte characters fit the 1,000-character body limit, but not one push record
    variables = {"input": campaign_input(QUIET, title={"zhCN": "题" * 120}, body={"zhCN": "短", "zhHK": "🏮" * 950})}
    preview = (await gql(http, PREVIEW, variables, quiet))["data"]["previewCampaign"]
    previews = {p["locale"]: p for p in preview["previews"]}
    assert previews["zh-HK"]["fits"] is False and previews["zh-HK"]["payloadBytes"] > MAX_PLAINTEXT
    assert previews["zh-CN"]["fits"] is True and previews["en"]["fits"] is True
    refused = await create(http, quiet, **variables["input"])
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("body.zh-HK", "push_payload_too_large")]


async def test_image_must_be_https_or_an_app_path(http: httpx.AsyncClient, db: Any) -> None:
    hqb = await operator(db, HQB)
    bad = await create(http, hqb, image={"zhCN": "http://img.example/a.png", "zhHK": "https://user@img.example/a.png",
                                         "en": "//img.example/a.png"})
    assert sorted((e["field"], e["code"]) for e in bad["errors"]) == [
        ("image.en", "push_image_invalid"), ("image.zh-CN", "push_image_invalid"),
        ("image.zh-HK", "push_image_invalid")]
    assert bad["errors"][0]["message"] and bad["errors"][0]["message"] != "push_image_invalid"
    made = await create(http, hqb, image={"zhCN": "/app/icons/icon-192.png", "en": "https://img.example/a.png"})
    assert made["errors"] == [] and made["campaign"]["image"] == "/app/icons/icon-192.png"
    english = await gql(http, STATS, {"id": made["campaign"]["id"]}, hqb | {"accept-language": "en"})
    assert english["data"]["campaignStats"]["campaign"]["image"] == "https://img.example/a.png"
    listed = await gql(http, INBOX, {"d": [to_global("District", HQB)], "locale": "zh-HK"})
    node = next(e["node"] for e in listed["data"]["inbox"]["edges"] if e["node"]["id"] == made["campaign"]["id"])
    assert node["image"] == "/app/icons/icon-192.png"  # zh-HK falls back to zh-CN's


async def test_the_list_holds_only_the_operators_districts(http: httpx.AsyncClient, db: Any) -> None:
    admin = await bearer(db, await make_account(db, "admin"))
    hqb, futian = await operator(db, HQB), await operator(db, FUTIAN)
    mine = (await create(http, hqb))["campaign"]["id"]
    theirs = (await create(http, futian, district=FUTIAN))["campaign"]["id"]
    both = (await create(http, admin, districtIds=[to_global("District", HQB), to_global("District", FUTIAN)]))
    spanning = both["campaign"]["id"]
    seen = [c["id"] for c in (await gql(http, LIST, {"first": 50}, hqb))["data"]["campaigns"]["campaigns"]]
    assert mine in seen and theirs not in seen and spanning not in seen
    assert seen.index(mine) == 0  # newest first
    everything = [c["id"] for c in (await gql(http, LIST, {"first": 3}, admin))["data"]["campaigns"]["campaigns"]]
    assert everything == [spanning, theirs, mine]  # an admin's: every district's, newest first
    merchant = await bearer(db, await make_account(db, "merchant", merchant_ids=["sb-goldsmith-wang"]), ("offers",))
    assert (await gql(http, LIST, {}, merchant))["data"]["campaigns"] == \
        {"campaigns": [], "errors": [{"code": "FORBIDDEN"}]}
    assert (await gql(http, LIST, {}))["data"]["campaigns"] == \
        {"campaigns": [], "errors": [{"code": "UNAUTHENTICATED"}]}
    too_many = await gql(http, LIST, {"first": 51}, hqb)
    assert too_many["errors"][0]["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"


def subscription(key: str, districts: list[str], topics: list[str], locale: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    endpoint = f"https://push.shangquan.example/send/{key}"
    return PushSubscription(subscription_id(endpoint), endpoint, "p256dh", "auth", "https://push.shangquan.example",
                            tuple(districts), tuple(topics), locale, now, now).to_doc()
