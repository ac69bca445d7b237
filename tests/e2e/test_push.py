"""Push: a message delivered to the service worker through CDP shows the notification; a click on it
brings the app to the notification's page. (pushManager.subscribe needs Google's push service and is
never called here.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from playwright.async_api import expect

from tests.conftest import RunningApp
from tests.e2e.conftest import controlled, ready, until


async def test_push_message_shows_a_notification_and_its_click_opens_the_page(
        context: Any, start: str, app_server: RunningApp) -> None:
    await context.grant_permissions(["notifications"], origin=app_server.url)
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

    message = {"id": "msg-1", "title": "华强北限时优惠", "body": "数据急救中心：免费检测，今晚 23:00 截止",
               "url": "/festivals", "tag": "offer-hqb",
               "actions": [{"action": "open", "title": "查看"}, {"action": "later", "title": "稍后"}]}
    await cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": app_server.url, "registrationId": registration_id, "data": json.dumps(message, ensure_ascii=False)})

    notification = await until(page, """async () => {
        const reg = await navigator.serviceWorker.ready;
        const [n] = await reg.getNotifications();
        return n && {title: n.title, body: n.body, icon: n.icon, tag: n.tag, data: n.data,
                     actions: n.actions.map((a) => a.action)};
    }""")
    assert notification["title"] == message["title"]
    assert notification["body"] == message["body"]
    assert notification["icon"].endswith("/app/icons/icon-192.png")
    assert notification["tag"] == "offer-hqb"
    assert notification["data"]["url"] == "/festivals"
    assert notification["actions"] == ["open", "later"]

    # notificationclick's work, run in the worker (a click on a real notification needs a desktop)
    worker = next(w for w in context.service_workers if w.url.endswith("/sw.js"))
    await worker.evaluate("self.registration.getNotifications().then(([n]) => openFromNotification(n, 'open'))")
    await page.wait_for_url("**/festivals")
    await expect(page.get_by_role("heading", level=1)).to_have_text("节庆活动")


async def test_push_payload_urls_stay_on_this_site(context: Any, start: str, app_server: RunningApp) -> None:
    page = await context.new_page()
    await page.goto(start)
    await controlled(page)
    worker = next(w for w in context.service_workers if w.url.endswith("/sw.js"))
    assert await worker.evaluate("safePath('https://evil.example/phish')") == "/"
    assert await worker.evaluate("safePath('/m/abc?x=1#y')") == "/m/abc?x=1#y"
    assert await worker.evaluate("safePath(undefined)") == "/"
