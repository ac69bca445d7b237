"""The inbox live, and each campaign once: the same campaign pushed twice (a worker that died after sending
sends it again) shows one notification — with the campaign's image — and one inbox entry, even across a restart
of the service worker; a campaign announced while the inbox is open appears at its top without a reload."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import expect
from redis.asyncio import Redis

from server.domain.inbox import service as inbox
from server.domain.push import campaign_service
from server.domain.push.campaign import CampaignInput
from server.settings import ROOT
from tests.conftest import RunningApp
from tests.e2e.conftest import artifacts_dir, controlled, ready, until
from tests.support import make_account, told_public_cache

IMAGE = "/app/icons/icon-192.png"
COLLECT_PUSHED = """
window.__pushed = [];
navigator.serviceWorker?.addEventListener("message", (e) => {
  if (e.data && e.data.type === "pushed") window.__pushed.push(e.data);
});
"""


def inbox_url(start: str) -> str:
    return (start if start.endswith("/") else start + "/").removesuffix("app/") + "inbox"


def campaign_input(title: str, **changes: Any) -> CampaignInput:
    data = {"title": {"zh-CN": title, "en": f"{title} (en)"}, "body": {"zh-CN": "数码配件满 200 减 30，今晚截止"},
            "url": {"zh-CN": "/festivals"}, "district_ids": ["huaqiangbei"], "topics": ["offers"]} | changes
    return CampaignInput(**data)


@pytest.fixture
async def redis(app_server: RunningApp) -> AsyncIterator[Redis]:
    client = Redis.from_url(app_server.settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


def test_the_inbox_subscribes_with_the_checked_in_document() -> None:
    document = (ROOT / "graphql" / "operations" / "InboxItems.graphql").read_text(encoding="utf-8")
    module = (ROOT / "pwa" / "screens.js").read_text(encoding="utf-8")
    sent = re.search(r'const INBOX_LIVE = "([^"]+)";', module)
    assert sent is not None
    assert " ".join(sent.group(1).split()) == " ".join(document.split())


async def test_the_same_campaign_pushed_twice_is_shown_once(
        context: Any, start: str, app_server: RunningApp, db_client: Any) -> None:
    db = db_client[app_server.db_name]
    admin = (await make_account(db, "admin")).actor()
    title = f"华强北今晚特惠 {uuid.uuid4().hex[:6]}"
    async with told_public_cache(app_server.settings):
        campaign = await campaign_service.create(db, admin, campaign_input(title, image={"zh-CN": IMAGE}),
                                                 now=datetime.now(UTC))
    message = campaign.payload("zh-CN").decode()  # what the worker encrypts for a zh-CN subscriber

    await context.grant_permissions(["notifications"], origin=app_server.url)
    await context.add_init_script(COLLECT_PUSHED)
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    registration: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_registrations(event: dict[str, Any]) -> None:
        for r in event["registrations"]:
            if r["scopeURL"] == app_server.url + "/" and not r["isDeleted"] and not registration.done():
                registration.set_result(r["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", on_registrations)
    await cdp.send("ServiceWorker.enable")
    await page.goto(start)
    await ready(page)
    await controlled(page)
    registration_id = await asyncio.wait_for(registration, timeout=10)

    async def deliver(handled: int) -> list[dict[str, Any]]:
        await cdp.send("ServiceWorker.deliverPushMessage", {
            "origin": app_server.url, "registrationId": registration_id, "data": message})
        # the worker reports every push it handled to the open windows, shown or not
        pushed: list[dict[str, Any]] = await until(page, "(n) => window.__pushed.length >= n && window.__pushed",
                                                   handled)
        return pushed

    await deliver(1)
    pushed = await deliver(2)
    assert [(p["id"], p["shown"]) for p in pushed] == [(campaign.id, True), (campaign.id, False)]
    notifications = await page.evaluate("""async () => (await (await navigator.serviceWorker.ready)
        .getNotifications()).map((n) => ({title: n.title, image: n.image, tag: n.tag, id: n.data.id}))""")
    assert notifications == [{"title": title, "image": app_server.url + IMAGE, "tag": f"campaign-{campaign.id}",
                              "id": campaign.id}]

    # a worker stopped and started again still knows the campaign
    await cdp.send("ServiceWorker.stopAllWorkers")
    pushed = await deliver(3)
    assert (pushed[2]["id"], pushed[2]["shown"]) == (campaign.id, False)
    count = await page.evaluate("async () => (await (await navigator.serviceWorker.ready).getNotifications()).length")
    assert count == 1

    await page.goto(inbox_url(start))
    await ready(page)
    await expect(page.locator(".msgs li", has_text=title)).to_have_count(1)


async def test_a_campaign_announced_while_the_inbox_is_open_appears_at_its_top(
        context: Any, start: str, app_server: RunningApp, db_client: Any, redis: Redis) -> None:
    db = db_client[app_server.db_name]
    admin = (await make_account(db, "admin")).actor()
    page = await context.new_page()
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    await page.goto(inbox_url(start))
    await ready(page)
    await page.evaluate("document.documentElement.dataset.e2eSameDocument = 'yes'")

    # The socket opens after the first page is shown: announce a first campaign until it arrives, so the server
    # surely has the subscription (no reply in graphql-transport-ws says so).
    async with told_public_cache(app_server.settings):
        probe = await campaign_service.create(db, admin, campaign_input(f"试探 {uuid.uuid4().hex[:6]}"),
                                              now=datetime.now(UTC))
    for _ in range(40):
        await inbox.announce(redis, probe.id)
        with contextlib.suppress(AssertionError):
            await expect(page.locator(".msgs li", has_text=probe.title["zh-CN"])).to_have_count(1, timeout=500)
            break
    else:
        raise AssertionError("the open inbox never received an announcement")

    title = f"东门夜市开幕 {uuid.uuid4().hex[:6]}"
    async with told_public_cache(app_server.settings):
        campaign = await campaign_service.create(db, admin, campaign_input(title), now=datetime.now(UTC))
    await inbox.announce(redis, campaign.id)
    newest = page.locator(".msgs li").first
    await expect(newest).to_contain_text(title)
    await expect(newest).to_have_class(re.compile(r"\barrived\b"))
    await expect(newest).to_have_class(re.compile(r"\bunread\b"))
    await expect(page.locator("#msgs-live")).to_have_text(f"新消息：{title}")
    await expect(page.locator(".msgs li", has_text=title)).to_have_count(1)
    assert await page.evaluate("document.documentElement.dataset.e2eSameDocument") == "yes"
    assert len([ws for ws in sockets if ws.url.endswith("/graphql")]) == 1
    await page.evaluate("Promise.all(document.getAnimations().map((a) => a.finished))")
    await page.screenshot(path=str(artifacts_dir() / "inbox-live-390.png"))

    # leaving the inbox closes its socket
    closed = asyncio.get_running_loop().create_future()
    sockets[-1].on("close", lambda _: closed.done() or closed.set_result(True))
    await page.locator("a[data-tab=home]").first.click()
    await ready(page)
    await asyncio.wait_for(closed, timeout=10)
