"""Back-office fixtures: the people of the authorization matrix, signed-in browsers-without-a-browser (httpx
clients with a cookie jar each, signed in through the real form), and a restore of the content after each module."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from server.domain.accounts.models import Account
from tests.conftest import RunningApp
from tests.support import PASSWORD, make_account

DISTRICT = "huaqiangbei"
OTHER_DISTRICT = "futian-cbd"
SHOP_X = "hqb-screen-doctor"  # merchant A's shop
SHOP_Y = "hqb-feipeng-drones"  # merchant B's shop, same district
# small: one document an area at most; with the documents derived from them (merchant_counts and
# merchant_postings from merchants, offers_by_merchant from offers, images_by_owner from images), which would
# otherwise keep what this module's writes made of them
RESTORED = ("offers", "offers_by_merchant", "merchants", "merchant_counts", "merchant_postings", "festivals",
            "areas", "products", "images", "images_by_owner", "sensors", "crowd_state", "crowd_alert_rules",
            "crowd_alerts")
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def hidden(html: str, name: str) -> str:
    match = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), html)
    assert match, f"no hidden field {name!r} in the page"
    return match.group(1)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@pytest.fixture(scope="session")
def db(db_client: AsyncMongoClient[Any], app_server: RunningApp) -> Any:
    return db_client[app_server.db_name]


@pytest.fixture(scope="session")
async def redis_client(app_server: RunningApp) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(app_server.settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@dataclass
class People:
    merchant_a: Account
    merchant_b: Account
    operator: Account
    other_operator: Account
    admin: Account


@pytest.fixture(scope="session")
async def people(db: Any) -> People:
    return People(
        merchant_a=await make_account(db, "merchant", merchant_ids=[SHOP_X]),
        merchant_b=await make_account(db, "merchant", merchant_ids=[SHOP_Y]),
        operator=await make_account(db, "operator", district_ids=[DISTRICT]),
        other_operator=await make_account(db, "operator", district_ids=[OTHER_DISTRICT]),
        admin=await make_account(db, "admin"),
    )


class Browser:
    """An httpx client with its own cookie jar, used like a browser without JavaScript."""

    def __init__(self, app: RunningApp, **headers: str) -> None:
        self.client = httpx.AsyncClient(base_url=app.url, timeout=30, headers=headers)
        self.csrf = ""

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        form = await self.client.get("/admin/login")
        assert form.status_code == 200, form.text
        response = await self.client.post("/admin/login", data={
            "csrf": csrf_of(form.text), "email": email, "password": password, "next": "/admin/"})
        if response.status_code == 303:
            home = await self.client.get("/admin/")
            assert home.status_code == 200, home.text
            self.csrf = csrf_of(home.text)
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)

    async def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
                   **kwargs: Any) -> httpx.Response:
        body = dict(data or {})
        if csrf and self.csrf:
            body.setdefault("csrf", self.csrf)
        return await self.client.post(url, data=body, **kwargs)

    async def form_page(self, url: str) -> str:
        """GET a form page; keep its CSRF token."""
        response = await self.client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:500])
        self.csrf = csrf_of(response.text)
        return response.text

    async def aclose(self) -> None:
        await self.client.aclose()


async def signed_in(app: RunningApp, account: Account, **headers: str) -> Browser:
    browser = Browser(app, **headers)
    response = await browser.login(account.email)
    assert response.status_code == 303, response.text
    return browser


@pytest.fixture(scope="module", autouse=True)
async def restore_content(db: Any, redis_client: aioredis.Redis) -> AsyncIterator[None]:
    """What the back office changes in the shared database is put back after each test module."""
    saved = {name: [d async for d in db[name].find({})] for name in RESTORED}
    yield
    for name, docs in saved.items():
        await db[name].delete_many({})
        if docs:
            await db[name].insert_many(docs)
    # Written around the app's write paths: the public cache's versions go too, so no cached answer survives
    await redis_client.delete(f"sq:pc:{db.name}:tags")
