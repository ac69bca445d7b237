"""Live campaign views over real WebSockets (graphql-transport-ws) against the running app: an operator follows
a campaign's progress until it is sent; an open inbox gets each new message once its campaign is announced."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from redis.asyncio import Redis

from server.api.ids import from_global, to_global
from server.api.inbox.hub import InboxHub
from server.domain.accounts import service as accounts
from server.domain.inbox import service as inbox
from server.domain.push import campaign_service
from server.domain.push.campaign import CampaignInput
from server.domain.push.progress import changed as progress_changed
from server.push import fanout
from tests.conftest import RunningApp, gql
from tests.support import make_account

HQB, FUTIAN = "huaqiangbei", "futian-cbd"
WAIT = 20  # seconds before a test gives up on an event it is owed (a hang guard, not a measurement)
PROGRESS = """subscription ($id: ID!) { campaignProgress(id: $id) {
  campaign { id status stats { targeted delivered } } errors { field code } } }"""
INBOX_ITEMS = """subscription ($d: [ID!]!, $topics: [PushTopic!], $locale: String) {
  inboxItems(districts: $d, topics: $topics, locale: $locale) { id title body url image topics districtIds } }"""


def new_input(district: str = HQB, **changes: Any) -> CampaignInput:
    tag = uuid.uuid4().hex[:6]
    data = {"title": {"zh-CN": f"今晚特惠 {tag}", "en": f"Tonight {tag}"}, "body": {"zh-CN": "满 200 减 30"},
            "url": {"zh-CN": "/festivals"}, "district_ids": [district], "topics": ["offers"]} | changes
    return CampaignInput(**data)


@pytest.fixture
def db(app_server: RunningApp, db_client: Any) -> Any:
    return db_client[app_server.db_name]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def socket(app: RunningApp, *, token: str | None = None, header: str | None = None) -> Client:
    transport = WebsocketsTransport(
        url=app.url.replace("http://", "ws://") + "/graphql", subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {token}"} if token else {},
        headers={"authorization": f"Bearer {header}"} if header else None)
    return Client(transport=transport)


async def token(db: Any, account: Any) -> str:
    made = await accounts.create_token(db, account.actor(), "live", ["districts"])
    assert made.secret is not None
    return made.secret


async def progress(session: Any, campaign_id: str) -> list[dict[str, Any]]:
    """Every event of one campaignProgress subscription, until the server completes it."""
    request = GraphQLRequest(PROGRESS, variable_values={"id": to_global("Campaign", campaign_id)})
    return [event["campaignProgress"] async for event in session.subscribe(request)]


async def test_campaign_progress_until_sent(app_server: RunningApp, db: Any, redis: Redis) -> None:
    operator = await make_account(db, "operator", district_ids=[HQB])
    campaign = await campaign_service.create(db, operator.actor(), new_input(), now=datetime.now(UTC))
    async with socket(app_server, token=await token(db, operator)) as session:
        request = GraphQLRequest(PROGRESS, variable_values={"id": to_global("Campaign", campaign.id)})
        events = session.subscribe(request)
        first = (await asyncio.wait_for(anext(events), WAIT))["campaignProgress"]
        assert first == {"campaign": {"id": to_global("Campaign", campaign.id), "status": "SENDING",
                                      "stats": {"targeted": 0, "delivered": 0}}, "errors": []}
        # what the worker writes as it expands the audience and sends, each write announced (no polling)
        await db.push_campaigns.update_one({"_id": campaign.id}, {"$set": {"stage": "expanded", "stats.targeted": 2}})
        await progress_changed(redis, campaign.id)
        expanded = (await asyncio.wait_for(anext(events), WAIT))["campaignProgress"]["campaign"]
        assert expanded["status"] == "SENDING" and expanded["stats"] == {"targeted": 2, "delivered": 0}
        await db.push_campaigns.update_one({"_id": campaign.id}, {"$inc": {"stats.delivered": 1}})
        await progress_changed(redis, campaign.id)
        half = (await asyncio.wait_for(anext(events), WAIT))["campaignProgress"]["campaign"]
        assert half["status"] == "SENDING" and half["stats"] == {"targeted": 2, "delivered": 1}
        await db.push_campaigns.update_one({"_id": campaign.id}, {"$inc": {"stats.delivered": 1}})
        await progress_changed(redis, campaign.id)
        done = (await asyncio.wait_for(anext(events), WAIT))["campaignProgress"]["campaign"]
        assert done["status"] == "SENT" and done["stats"] == {"targeted": 2, "delivered": 2}
        with pytest.raises(StopAsyncIteration):  # the server completes the subscription once it is sent
            await asyncio.wait_for(anext(events), WAIT)


async def test_campaign_progress_ends_when_cancelled_and_accepts_a_header_token(
        app_server: RunningApp, db: Any, redis: Redis) -> None:
    operator = await make_account(db, "operator", district_ids=[HQB])
    campaign = await campaign_service.create(db, operator.actor(), new_input(), now=datetime.now(UTC))
    async with socket(app_server, header=await token(db, operator)) as session:
        follow = asyncio.create_task(progress(session, campaign.id))
        await asyncio.sleep(0)  # let the subscription start; it reports the cancel whenever it reads it
        await campaign_service.cancel(db, operator.actor(), campaign.id)
        await progress_changed(redis, campaign.id)  # as cancelCampaign and the console do
        events = await asyncio.wait_for(follow, WAIT)
    assert events[-1]["campaign"]["status"] == "CANCELLED" and all(e["errors"] == [] for e in events)
    assert [e["campaign"]["status"] for e in events[:-1]] in ([], ["SENDING"])


async def test_campaign_progress_is_for_operators_of_its_districts(app_server: RunningApp, db: Any) -> None:
    author = await make_account(db, "operator", district_ids=[HQB])
    campaign = await campaign_service.create(db, author.actor(), new_input(), now=datetime.now(UTC))
    elsewhere = await make_account(db, "operator", district_ids=[FUTIAN])
    cases = ((await token(db, elsewhere), "FORBIDDEN"), (None, "UNAUTHENTICATED"), ("sq_nonsense", "UNAUTHENTICATED"))
    for secret, code in cases:
        async with socket(app_server, token=secret) as session:
            events = await asyncio.wait_for(progress(session, campaign.id), WAIT)
        assert events == [{"campaign": None, "errors": [{"field": "", "code": code}]}], secret


class Inbox:
    """One inboxItems subscription, read by a task so that waiting for an item never cancels the stream."""

    def __init__(self, session: Any, variables: dict[str, Any]) -> None:
        self.items: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read(session, variables))

    async def _read(self, session: Any, variables: dict[str, Any]) -> None:
        async for event in session.subscribe(GraphQLRequest(INBOX_ITEMS, variable_values=variables)):
            await self.items.put(event["inboxItems"])

    async def next(self, wait: float = WAIT) -> dict[str, Any]:
        return await asyncio.wait_for(self.items.get(), wait)

    async def live(self, db: Any, redis: Redis, actor: Any, **changes: Any) -> set[str]:
        """Announces a probe campaign until one reaches the subscriber, so the server has surely registered
        it; returns the probe's id (some announcements may still arrive: skip it)."""
        probe = await campaign_service.create(db, actor, new_input(**changes), now=datetime.now(UTC))
        for _ in range(40):
            await inbox.announce(redis, probe.id)
            with contextlib.suppress(TimeoutError):
                item = await self.next(wait=0.5)
                assert item["id"] == to_global("Campaign", probe.id)
                return {item["id"]}
        raise AssertionError("the inbox subscription never received an announcement")

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_inbox_items_arrive_when_their_campaign_is_announced(
        app_server: RunningApp, db: Any, redis: Redis) -> None:
    admin = (await make_account(db, "admin")).actor()
    async with socket(app_server) as session:
        reader = Inbox(session, {"d": [to_global("District", HQB)], "topics": ["OFFERS"], "locale": "en"})
        try:
            skip = await reader.live(db, redis, admin)
            now = datetime.now(UTC)
            others = [await campaign_service.create(db, admin, new_input(FUTIAN), now=now),  # another district
                      # another topic
                      await campaign_service.create(db, admin, new_input(topics=["festivals"]), now=now),
                      # not for en readers
                      await campaign_service.create(db, admin, new_input(locales=["zh-CN"]), now=now)]
            cancelled = await campaign_service.create(db, admin, new_input(), now=now)
            await campaign_service.cancel(db, admin, cancelled.id)
            for other in [*others, cancelled]:
                await inbox.announce(redis, other.id)
            await inbox.announce(redis, "no-such-campaign")
            wanted = await campaign_service.create(db, admin, new_input(
                district_ids=[FUTIAN, HQB], title={"zh-CN": "东门夜市", "en": "Night market"},
                image={"zh-CN": "https://img.shangquan.example/night.jpg"}), now=now)
            await inbox.announce(redis, wanted.id)
            item = await reader.next()
            while item["id"] in skip:
                item = await reader.next()
            # announcements are handled in order: everything before it was filtered out, not merely late
            assert item == {"id": to_global("Campaign", wanted.id), "title": "Night market", "body": "满 200 减 30",
                            "url": "/festivals", "image": "https://img.shangquan.example/night.jpg",
                            "topics": ["OFFERS"],
                            "districtIds": [to_global("District", FUTIAN), to_global("District", HQB)]}
        finally:
            await reader.close()


async def test_the_hub_resubscribes_after_losing_redis(redis_url: str, db: Any, redis: Redis) -> None:
    name = f"inbox-hub-{uuid.uuid4().hex[:8]}"
    hub_redis = Redis.from_url(redis_url, decode_responses=True, client_name=name)
    hub = InboxHub(hub_redis, db)
    await hub.start()
    admin = (await make_account(db, "admin")).actor()
    subscription = hub.subscribe([HQB], [], "zh-HK")
    try:
        killed = 0
        for client in await redis.client_list(_type="pubsub"):
            if client.get("name") == name:
                killed += await redis.client_kill_filter(_id=client["id"])
        assert killed == 1
        # the hub notices, waits a second and subscribes again on a new connection
        async with asyncio.timeout(WAIT):
            while not any(c.get("name") == name and c.get("sub") == "1"
                          for c in await redis.client_list(_type="pubsub")):
                await asyncio.sleep(0.1)
        campaign = await campaign_service.create(db, admin, new_input(), now=datetime.now(UTC))
        await inbox.announce(redis, campaign.id)
        got = await asyncio.wait_for(subscription.next(), WAIT)
        assert got.id == campaign.id and got.localized("zh-HK")[0] == campaign.title["zh-CN"]
    finally:
        subscription.close()
        assert not hub.by_district  # nothing left behind for a closed subscription
        await hub.stop()
        await hub_redis.aclose()


async def test_create_campaign_reaches_an_open_inbox_through_the_fanout(
        app_server: RunningApp, db: Any, redis: Redis) -> None:
    """createCampaign stores a due campaign; the worker's expansion (fanout.expand_pending) announces it."""
    operator = await make_account(db, "operator", district_ids=[HQB])
    headers = {"authorization": f"Bearer {await token(db, operator)}"}
    create = """mutation ($input: CampaignInput!) { createCampaign(input: $input) {
      campaign { id status } errors { code } } }"""
    async with socket(app_server) as session:
        reader = Inbox(session, {"d": [to_global("District", HQB)], "topics": ["OFFERS"], "locale": "zh-HK"})
        try:
            skip = await reader.live(db, redis, operator.actor())
            async with httpx.AsyncClient(base_url=app_server.url, timeout=30) as http:
                made = await gql(http, create, {"input": {
                    "title": {"zhCN": "华强北周末市集", "zhHK": "華強北周末市集"}, "body": {"zhCN": "周六周日"},
                    "districtIds": [to_global("District", HQB)], "topics": ["OFFERS"]}}, headers)
            campaign = made["data"]["createCampaign"]["campaign"]
            assert made["data"]["createCampaign"]["errors"] == [] and campaign["status"] in {"SENDING", "SENT"}
            await fanout.enqueue(db, redis, from_global(campaign["id"])[1])  # what a worker does within a second
            item = await reader.next()
            while item["id"] in skip:
                item = await reader.next()
            assert (item["id"], item["title"], item["body"]) == (campaign["id"], "華強北周末市集", "周六周日")
        finally:
            await reader.close()
