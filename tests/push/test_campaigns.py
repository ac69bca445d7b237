"""Campaign rules, authorization, and createCampaign / cancelCampaign / campaignStats / inbox in GraphQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import strawberry
from redis.asyncio import Redis

from server.api.context import Context
from server.api.ids import to_global
from server.api.inbox.queries import InboxQueries
from server.api.push.campaigns import CampaignMutations, CampaignQueries
from server.domain import messages
from server.domain.actor import ANONYMOUS, Actor
from server.domain.errors import Forbidden, Invalid, NotFound, Unauthenticated
from server.domain.push import campaign as campaign_model
from server.domain.push import campaign_service
from server.domain.push.campaign import CampaignInput
from server.push.encode import MAX_TTL
from server.settings import Settings

ADMIN = Actor("admin-1", "admin@shangquan.example", "admin")
HQB = Actor("op-1", "op1@shangquan.example", "operator", district_ids=frozenset({"huaqiangbei"}))
BOTH = Actor("op-2", "op2@shangquan.example", "operator", district_ids=frozenset({"huaqiangbei", "dongmen"}))
MERCHANT = Actor("m-1", "m1@shangquan.example", "merchant", merchant_ids=frozenset({"shop-1"}))
NOW = datetime(2025, 2, 1, 4, 0, tzinfo=UTC)


def data(**changes: Any) -> CampaignInput:
    base = CampaignInput(title={"zh-CN": "华强北电子节", "zh-HK": "華強北電子節", "en": "HQB festival"},
                         body={"zh-CN": "今晚开幕", "en": "Opens tonight"}, district_ids=["huaqiangbei"],
                         topics=["festivals"], url={"zh-CN": "/d/huaqiangbei"})
    return replace(base, **changes)


async def test_operators_of_every_target_district_or_admins_only(db: Any) -> None:
    for who in (MERCHANT, HQB):
        with pytest.raises(Forbidden):
            await campaign_service.create(db, who, data(district_ids=["huaqiangbei", "dongmen"]), now=NOW)
    with pytest.raises(Unauthenticated):
        await campaign_service.create(db, Actor(), data(), now=NOW)
    with pytest.raises(Forbidden):
        await campaign_service.create(db, replace(BOTH, scopes=frozenset({"offers"})), data(), now=NOW)
    made = await campaign_service.create(db, BOTH, data(district_ids=["huaqiangbei", "dongmen"]), now=NOW)
    assert made.status == "sending" and made.district_ids == ("dongmen", "huaqiangbei")
    assert made.locales == ("en", "zh-CN", "zh-HK") and made.stage == "new"
    shekou = await campaign_service.create(db, ADMIN, data(district_ids=["shekou"]), now=NOW)
    assert shekou.district_ids == ("shekou",)
    with pytest.raises(Forbidden):
        await campaign_service.cancel(db, HQB, made.id)
    with pytest.raises(Forbidden):
        await campaign_service.for_operator(db, MERCHANT, made.id)
    with pytest.raises(NotFound):
        await campaign_service.cancel(db, BOTH, "nope")
    assert (await campaign_service.cancel(db, BOTH, made.id)).status == "cancelled"
    assert (await campaign_service.cancel(db, BOTH, made.id)).status == "cancelled"  # idempotent
    assert await db.audit.count_documents({"target_id": made.id}) == 2


async def test_field_rules(db: Any) -> None:
    with pytest.raises(Invalid) as caught:
        await campaign_service.create(db, ADMIN, data(
            title={"en": "x"}, body={"zh-CN": "y" * 1001}, url={"zh-CN": "https://evil.example/", "en": "//x"},
            topics=["weather"], locales=["fr"], ttl=30, urgency="urgent", collapse_topic="has space"), now=NOW)
    assert caught.value.fields == {
        "title.zh-CN": "required", "body.zh-CN": "too_long", "url.zh-CN": "push_url_invalid",
        "url.en": "push_url_invalid", "topics": "invalid_choice", "locales": "invalid_choice",
        "urgency": "invalid_choice", "collapseTopic": "push_topic_invalid", "ttl": "out_of_range"}
    with pytest.raises(Invalid) as caught:
        await campaign_service.create(db, ADMIN, data(district_ids=[]), now=NOW)
    assert caught.value.fields == {"districtIds": "required"}
    with pytest.raises(Invalid) as caught:
        await campaign_service.create(db, ADMIN, data(district_ids=["atlantis"], ttl=MAX_TTL + 1), now=NOW)
    assert caught.value.fields == {"districtIds": "unknown_district", "ttl": "out_of_range"}
    for key in campaign_model.MESSAGE_KEYS:  # the push_* keys join server/domain/messages.py MESSAGES at wiring time
        assert key.startswith("push_") or messages.translate(key, "en") != key, key


async def test_payload_size_is_checked_for_every_locale_at_compose_time(db: Any) -> None:
    # 950 four-byte characters fit the 1,000-character body limit but not, with the title, one push record
    with pytest.raises(Invalid) as caught:
        await campaign_service.create(db, ADMIN, data(body={"zh-CN": "🎉" * 950, "en": "short"},
                                               title={"zh-CN": "题" * 120}), now=NOW)
    assert caught.value.fields == {"body.zh-CN": "push_payload_too_large"}
    with pytest.raises(Invalid) as caught:  # only the zh-HK readers' message is too big
        await campaign_service.create(db, ADMIN, data(body={"zh-CN": "短", "zh-HK": "🏮" * 950},
                                               title={"zh-CN": "題" * 120}), now=NOW)
    assert caught.value.fields == {"body.zh-HK": "push_payload_too_large"}
    made = await campaign_service.create(db, ADMIN, data(body={"zh-CN": "商" * 1000}, title={"zh-CN": "题" * 120}),
                                         now=NOW)
    assert len(made.payload("zh-CN")) <= 3993


async def test_ttl_is_clipped_to_the_linked_festival(db: Any) -> None:
    await db.festivals.insert_many([
        {"_id": "fest", "ends_at": NOW + timedelta(hours=2), "district_ids": ["huaqiangbei"]},
        {"_id": "past", "ends_at": NOW - timedelta(hours=2), "district_ids": ["huaqiangbei"]}])
    made = await campaign_service.create(db, ADMIN, data(ttl=7 * 86400, festival_id="fest"), now=NOW)
    assert made.ttl == 7200 and made.festival_id == "fest"
    assert (await campaign_service.create(db, ADMIN, data(ttl=600, festival_id="fest"), now=NOW)).ttl == 600
    with pytest.raises(Invalid) as caught:
        await campaign_service.create(db, ADMIN, data(festival_id="past"), now=NOW)
    assert caught.value.fields == {"festivalId": "push_festival_ended"}
    with pytest.raises(Invalid) as caught:
        await campaign_service.create(db, ADMIN, data(festival_id="missing"), now=NOW)
    assert caught.value.fields == {"festivalId": "not_found"}


@strawberry.type
class Query(InboxQueries, CampaignQueries):
    pass


@strawberry.type
class Mutation(CampaignMutations):
    pass


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)
CREATE = """
mutation ($input: CampaignInput!) {
  createCampaign(input: $input) {
    campaign { id status title body url locale ttlSeconds urgency districtIds topics stats { targeted delivered } }
    errors { field code message }
  }
}"""
INBOX = """
query ($districts: [ID!]!, $topics: [PushTopic!], $locale: String, $first: Int, $after: String) {
  inbox(districts: $districts, topics: $topics, locale: $locale, first: $first, after: $after) {
    locale edges { cursor node { id title body url topics } } pageInfo { hasNextPage endCursor }
  }
}"""
STATS = "query ($id: ID!) { campaignStats(id: $id) { campaign { status stats { targeted delivered cancelled } } " \
        "errors { code } } }"
CANCEL = "mutation ($id: ID!) { cancelCampaign(id: $id) { campaign { status } errors { code } } }"


async def run(db: Any, redis: Redis, query: str, variables: dict[str, Any] | None = None, *,
              who: Actor = ANONYMOUS, now: datetime | None = None) -> dict[str, Any]:
    context = Context(db=db, redis=redis, settings=Settings(), locale="zh-CN", now=now or datetime.now(UTC),
                      request_id="test", actor=who)
    result = await SCHEMA.execute(query, variable_values=variables, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


def gql_input(**changes: Any) -> dict[str, Any]:
    base = {"title": {"zhCN": "华强北电子节", "zhHK": "華強北電子節", "en": "HQB festival"},
            "body": {"zhCN": "今晚开幕", "en": "Opens tonight"}, "url": {"zhCN": "/d/huaqiangbei"},
            "districtIds": [to_global("District", "huaqiangbei")], "topics": ["FESTIVALS"]}
    return base | changes


async def test_graphql_create_inbox_stats_cancel(db: Any, redis: Redis) -> None:
    denied = await run(db, redis, CREATE, {"input": gql_input()}, who=MERCHANT)
    assert denied["createCampaign"] == {"campaign": None, "errors": [
        {"field": "", "code": "FORBIDDEN", "message": "these districts are not yours"}]}
    bad = await run(db, redis, CREATE, {"input": gql_input(title={"en": "x"}, ttlSeconds=5)}, who=HQB)
    assert {(e["field"], e["code"]) for e in bad["createCampaign"]["errors"]} == \
        {("title.zh-CN", "required"), ("ttl", "out_of_range")}
    t0 = datetime.now(UTC)
    later = t0 + timedelta(seconds=10)  # after all three send times
    made = []
    for i, topic in enumerate(["FESTIVALS", "OFFERS", "FESTIVALS"]):
        answer = await run(db, redis, CREATE, {"input": gql_input(
            topics=[topic], title={"zhCN": f"消息{i}", "en": f"Message {i}"}, urgency="HIGH", ttlSeconds=3600)},
            who=HQB, now=t0 + timedelta(seconds=i))
        assert answer["createCampaign"]["errors"] == []
        made.append(answer["createCampaign"]["campaign"])
    assert made[0]["status"] == "SENDING" and made[0]["urgency"] == "HIGH" and made[0]["ttlSeconds"] == 3600
    assert made[0]["stats"] == {"targeted": 0, "delivered": 0}  # stored at once: the workers expand it
    huaqiangbei = [to_global("District", "huaqiangbei")]

    page = (await run(db, redis, INBOX, {"districts": huaqiangbei, "locale": "zh-HK", "first": 2}, now=later))["inbox"]
    assert page["locale"] == "zh-HK" and page["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["title"] for e in page["edges"]] == ["消息2", "消息1"]  # no zh-HK title: zh-CN
    assert page["edges"][0]["node"]["body"] == "今晚开幕" and page["edges"][0]["node"]["url"] == "/d/huaqiangbei"
    rest = (await run(db, redis, INBOX, {"districts": huaqiangbei, "locale": "zh-HK", "first": 2,
                                         "after": page["pageInfo"]["endCursor"]}, now=later))["inbox"]
    assert [e["node"]["title"] for e in rest["edges"]] == ["消息0"] and rest["pageInfo"]["hasNextPage"] is False
    english = (await run(db, redis, INBOX, {"districts": huaqiangbei, "topics": ["OFFERS"], "locale": "en"},
                         now=later))["inbox"]
    assert [(e["node"]["title"], e["node"]["body"]) for e in english["edges"]] == [("Message 1", "Opens tonight")]
    elsewhere = (await run(db, redis, INBOX, {"districts": [to_global("District", "dongmen")]}, now=later))["inbox"]
    assert elsewhere["edges"] == []

    stats = await run(db, redis, STATS, {"id": made[2]["id"]}, who=HQB, now=later)  # its send time has come
    assert stats["campaignStats"] == {"campaign": {"status": "SENDING", "stats": {
        "targeted": 0, "delivered": 0, "cancelled": 0}}, "errors": []}
    other = Actor("op-3", "op3@shangquan.example", "operator", district_ids=frozenset({"dongmen"}))
    for who in (other, MERCHANT):
        assert (await run(db, redis, STATS, {"id": made[2]["id"]}, who=who))["campaignStats"] == \
            {"campaign": None, "errors": [{"code": "FORBIDDEN"}]}
        assert (await run(db, redis, CANCEL, {"id": made[2]["id"]}, who=who))["cancelCampaign"]["errors"] == \
            [{"code": "FORBIDDEN"}]
    assert (await run(db, redis, CANCEL, {"id": made[2]["id"]}, who=HQB))["cancelCampaign"] == \
        {"campaign": {"status": "CANCELLED"}, "errors": []}
    after = (await run(db, redis, INBOX, {"districts": huaqiangbei, "locale": "en"}, now=later))["inbox"]
    assert [e["node"]["title"] for e in after["edges"]] == ["Message 1", "Message 0"]  # cancelled: gone


async def test_inbox_respects_the_campaign_locales(db: Any, redis: Redis) -> None:
    await campaign_service.create(db, ADMIN, data(locales=["en"]), now=NOW)
    huaqiangbei = [to_global("District", "huaqiangbei")]
    assert len((await run(db, redis, INBOX, {"districts": huaqiangbei, "locale": "en"}))["inbox"]["edges"]) == 1
    assert (await run(db, redis, INBOX, {"districts": huaqiangbei, "locale": "zh-HK"}))["inbox"]["edges"] == []


async def test_the_service_workers_click_report_counts_on_the_campaign(app_server: Any, db_client: Any) -> None:
    import httpx

    from server.domain.push import campaign_service
    from tests.support import make_account

    db = db_client[app_server.db_name]
    admin = (await make_account(db, "admin")).actor()
    campaign = await campaign_service.create(db, admin, CampaignInput(
        title={"zh-CN": "点击测试"}, body={"zh-CN": "正文"}, url={"zh-CN": "/festivals"}, district_ids=["huaqiangbei"],
        topics=["offers"]), now=datetime.now(UTC))
    async with httpx.AsyncClient(base_url=app_server.url) as http:
        clicked = await http.post("/push/clicked", json={"id": campaign.id, "action": None, "url": "/"})
        assert clicked.status_code == 204
        assert (await http.post("/push/clicked", json={"id": "0" * 32})).status_code == 404
        assert (await http.post("/push/clicked", content=b"{nope")).status_code == 400
    stored = await db.push_campaigns.find_one({"_id": campaign.id})
    assert stored["stats"]["clicked"] == 1


async def test_a_send_time_without_a_zone_is_refused(db: Any) -> None:
    """"20:00" is Shanghai to an operator and UTC to a server: eight hours apart, and quiet hours between."""
    with pytest.raises(Invalid) as refused:
        await campaign_service.create(db, ADMIN, data(send_at=datetime(2025, 2, 1, 20, 0)), now=NOW)
    assert refused.value.fields == {"sendAt": "bad_datetime"}
    made = await campaign_service.create(db, ADMIN, data(send_at=datetime(2025, 2, 1, 20, 0, tzinfo=UTC)), now=NOW)
    assert made.send_at == datetime(2025, 2, 1, 20, 0, tzinfo=UTC) and made.scheduled(NOW.timestamp())


async def test_a_late_approval_still_ends_with_the_festival(db: Any) -> None:
    await db.festivals.insert_one({"_id": "hqb-fest", "ends_at": NOW + timedelta(hours=10)})
    made = await campaign_service.create(db, HQB, data(ttl=8 * 3600, festival_id="hqb-fest"), now=NOW, approval=True)
    assert made.ttl == 8 * 3600
    approved = await campaign_service.approve(db, BOTH, made.id, now=NOW + timedelta(hours=6))
    assert approved.ttl == 4 * 3600 and approved.expires_ts == (NOW + timedelta(hours=10)).timestamp()
    late = await campaign_service.create(db, HQB, data(festival_id="hqb-fest"), now=NOW, approval=True)
    with pytest.raises(Invalid) as ended:
        await campaign_service.approve(db, BOTH, late.id, now=NOW + timedelta(hours=11))
    assert ended.value.fields == {"id": campaign_model.FESTIVAL_ENDED}
