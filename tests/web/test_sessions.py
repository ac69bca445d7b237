"""Signing in and out of the back office: cookies, expiry, logging out everywhere, rate limits, invitations."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.domain.accounts import ratelimit
from server.domain.accounts import service as accounts
from tests.conftest import RunningApp
from tests.support import PASSWORD, make_account
from tests.web.conftest import SHOP_X, Browser, csrf_of, signed_in

CSRF_VALUE = re.compile(r'name="csrf" value="[^"]*"')


def session_id(browser: Browser) -> str:
    cookie = browser.client.cookies.get("sq_session", path="/admin")
    assert cookie, "no session cookie"
    return cookie.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Stranger:
    """Where failed sign-ins come from and an email no account has, this test's own: the failure counters in
    Redis outlive a test run, so fixed ones would be full on a rerun within their window."""

    address: str
    unknown_email: str

    def keys(self) -> list[str]:
        return [f"rl:login:ip:{self.address}", f"rl:login:account:{self.unknown_email}"]


@pytest.fixture
async def stranger(redis_client: aioredis.Redis) -> AsyncIterator[Stranger]:
    # 10.x from the loopback proxy: the app takes the client's address from X-Forwarded-For (as behind a proxy)
    mine = Stranger(f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}",
                    f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    yield mine
    await redis_client.delete(*mine.keys())


async def test_the_failure_counter_works_on_the_apps_redis(redis_client: aioredis.Redis, stranger: Stranger) -> None:
    await ratelimit.record_failure(redis_client, stranger.unknown_email, stranger.address)
    for key in stranger.keys():
        assert await redis_client.get(key) == "1"
        assert 0 < await redis_client.ttl(key) <= ratelimit.WINDOW_SECONDS


async def test_sign_in_sets_a_hardened_session_cookie_and_sign_out_ends_the_session(
        app_server: RunningApp, db: Any, redis_client: aioredis.Redis) -> None:
    account = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    browser = Browser(app_server)
    form = await browser.get("/admin/login")
    assert 'name="csrf"' in form.text and "sq_csrf=" in form.headers["set-cookie"]
    response = await browser.client.post("/admin/login", data={"csrf": csrf_of(form.text), "email": account.email,
                                                               "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/admin/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sq_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "path=/admin" in flags
    assert "secure" not in flags  # plain http here; over https the cookie is Secure
    sid = session_id(browser)
    assert await redis_client.exists(f"session:{sid}")
    home = await browser.get("/admin/")
    assert home.status_code == 200 and account.email in home.text
    # signing out needs the form's token too
    refused = await browser.client.post("/admin/logout", data={})
    assert refused.status_code == 403 and await redis_client.exists(f"session:{sid}")
    out = await browser.client.post("/admin/logout", data={"csrf": csrf_of(home.text)})
    assert out.status_code == 303 and out.headers["location"].startswith("/admin/login")
    assert not await redis_client.exists(f"session:{sid}")
    after = await browser.get("/admin/")
    assert after.status_code == 303 and after.headers["location"].startswith("/admin/login")
    await browser.aclose()


async def test_a_stolen_cookie_is_useless_after_sign_out(app_server: RunningApp, db: Any) -> None:
    account = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    browser = await signed_in(app_server, account)
    stolen = browser.client.cookies.get("sq_session", path="/admin")
    await browser.post("/admin/logout")
    thief = Browser(app_server)
    thief.client.cookies.set("sq_session", stolen or "", path="/admin")
    assert (await thief.get("/admin/")).status_code == 303
    await browser.aclose()
    await thief.aclose()


async def test_logout_everywhere_ends_every_session_of_the_account(app_server: RunningApp, db: Any,
                                                                   redis_client: aioredis.Redis) -> None:
    account = await make_account(db, "operator", district_ids=["huaqiangbei"])
    phone, laptop = await signed_in(app_server, account), await signed_in(app_server, account)
    other = await signed_in(app_server, await make_account(db, "operator", district_ids=["huaqiangbei"]))
    assert session_id(phone) != session_id(laptop)
    response = await phone.post("/admin/logout-everywhere")
    assert response.status_code == 303 and "signed_out_everywhere" in response.headers["location"]
    assert (await laptop.get("/admin/")).status_code == 303
    assert (await phone.get("/admin/")).status_code == 303
    assert (await other.get("/admin/")).status_code == 200  # someone else's sessions are untouched
    notice = await phone.get(response.headers["location"])
    assert "已在所有设备上退出登录" in notice.text
    for browser in (phone, laptop, other):
        await browser.aclose()


async def test_an_idle_session_expires(app_server: RunningApp, db: Any, redis_client: aioredis.Redis) -> None:
    account = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    browser = await signed_in(app_server, account)
    sid = session_id(browser)
    ttl = await redis_client.ttl(f"session:{sid}")
    assert 0 < ttl <= app_server.settings.session_idle_minutes * 60  # idle expiry lives in Redis
    await redis_client.delete(f"session:{sid}")  # as if the idle time had passed
    page = await browser.get(f"/admin/merchants/{SHOP_X}/offers")
    assert page.status_code == 303
    assert page.headers["location"] == f"/admin/login?next=/admin/merchants/{SHOP_X}/offers"
    # after signing in again the browser goes back where it was
    form = await browser.get(page.headers["location"])
    again = await browser.client.post("/admin/login", data={
        "csrf": csrf_of(form.text), "email": account.email, "password": PASSWORD,
        "next": f"/admin/merchants/{SHOP_X}/offers"})
    assert again.status_code == 303 and again.headers["location"] == f"/admin/merchants/{SHOP_X}/offers"
    await browser.aclose()


async def test_an_absolute_expiry_ends_even_an_active_session(app_server: RunningApp, db: Any,
                                                              redis_client: aioredis.Redis) -> None:
    account = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    browser = await signed_in(app_server, account)
    sid = session_id(browser)
    await redis_client.hset(f"session:{sid}", "created", "1000")  # created long ago
    assert (await browser.get("/admin/")).status_code == 303
    await browser.aclose()


async def test_next_never_leaves_the_back_office(app_server: RunningApp, db: Any) -> None:
    account = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    for target in ("https://evil.example/", "//evil.example/admin/", "/admin/../graphql", "/graphql"):
        browser = Browser(app_server)
        form = await browser.get("/admin/login", params={"next": target})
        response = await browser.client.post("/admin/login", data={
            "csrf": csrf_of(form.text), "email": account.email, "password": PASSWORD, "next": target})
        assert response.status_code == 303 and response.headers["location"] == "/admin/", target
        await browser.aclose()


async def test_wrong_passwords_are_rate_limited_with_one_message_for_every_email(
        app_server: RunningApp, db: Any, stranger: Stranger, redis_client: aioredis.Redis) -> None:
    account = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    messages = {}
    for email in (account.email, stranger.unknown_email):
        browser = Browser(app_server, **{"accept-language": "en", "x-forwarded-for": stranger.address})
        for attempt in range(1, ratelimit.MAX_PER_ACCOUNT + 1):
            form = await browser.get("/admin/login")
            response = await browser.client.post("/admin/login", data={
                "csrf": csrf_of(form.text), "email": email, "password": "wrong password!"})
            assert response.status_code == 422, (email, attempt)
            assert "Wrong email or password." in response.text
            assert email in response.text  # the typed email is kept
        form = await browser.get("/admin/login")
        limited = await browser.client.post("/admin/login", data={
            "csrf": csrf_of(form.text), "email": email, "password": "wrong password!"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert "Too many sign-in attempts" in limited.text
        messages[email] = CSRF_VALUE.sub("", limited.text.replace(email, "EMAIL"))
        await browser.aclose()
    # no account enumeration: an unknown email reads exactly like a known one
    assert messages[account.email] == messages[stranger.unknown_email]
    # the failures counted against the address they came from too
    assert await redis_client.get(f"rl:login:ip:{stranger.address}") == str(2 * ratelimit.MAX_PER_ACCOUNT)
    # even the right password waits now, from anywhere
    browser = Browser(app_server)
    form = await browser.get("/admin/login")
    right = await browser.client.post("/admin/login", data={
        "csrf": csrf_of(form.text), "email": account.email, "password": PASSWORD})
    assert right.status_code == 429 and "登录尝试次数过多" in right.text
    await browser.aclose()


async def test_sign_in_refuses_a_post_without_the_double_submit_token(app_server: RunningApp, db: Any) -> None:
    account = await make_account(db, "merchant", merchant_ids=[SHOP_X])
    browser = Browser(app_server)
    form = await browser.get("/admin/login")
    token = csrf_of(form.text)
    no_field = await browser.client.post("/admin/login", data={"email": account.email, "password": PASSWORD})
    wrong = await browser.client.post("/admin/login", data={"csrf": token[::-1], "email": account.email,
                                                             "password": PASSWORD})
    browser.client.cookies.clear()
    no_cookie = await browser.client.post("/admin/login", data={"csrf": token, "email": account.email,
                                                                 "password": PASSWORD})
    for response in (no_field, wrong, no_cookie):
        assert response.status_code == 403 and "sq_session=" not in response.headers.get("set-cookie", "")
    await browser.aclose()


async def test_an_invitation_link_sets_a_password_and_signs_in(app_server: RunningApp, db: Any,
                                                               redis_client: aioredis.Redis) -> None:
    operator = await make_account(db, "operator", district_ids=["huaqiangbei"])
    browser = await signed_in(app_server, operator)
    await browser.form_page(f"/admin/invite?merchant={SHOP_X}")
    done = await browser.post("/admin/invite", {"email": "new-owner@example.com", "role": "merchant",
                                                "merchant_ids": [SHOP_X]})
    assert done.status_code == 200
    link = done.text.split('id="invitation-link" type="text" readonly value="', 1)[1].split('"', 1)[0]
    path = link.split(app_server.url, 1)[1]
    assert path.startswith("/admin/invite/")
    await browser.aclose()

    owner = Browser(app_server, **{"accept-language": "en"})
    page = await owner.get(path)
    assert page.status_code == 200 and 'type="password"' in page.text
    mismatch = await owner.client.post(path, data={"csrf": csrf_of(page.text), "password": "long enough pass",
                                                   "password2": "something else!"})
    assert mismatch.status_code == 422 and "The two passwords differ." in mismatch.text
    short = await owner.client.post(path, data={"csrf": csrf_of(page.text), "password": "short", "password2": "short"})
    assert short.status_code == 422 and "Use at least 10 characters." in short.text
    no_token = await owner.client.post(path, data={"password": "long enough pass", "password2": "long enough pass"})
    assert no_token.status_code == 403
    accepted = await owner.client.post(path, data={"csrf": csrf_of(page.text), "password": "long enough pass",
                                                   "password2": "long enough pass"})
    assert accepted.status_code == 303
    home = await owner.get(accepted.headers["location"])
    assert home.status_code == 200 and "new-owner@example.com" in home.text
    assert f"/admin/merchants/{SHOP_X}" in home.text
    again = await owner.client.post(path, data={"csrf": csrf_of(page.text), "password": "long enough pass",
                                                "password2": "long enough pass"})
    assert again.status_code == 404  # a link works once
    await owner.aclose()
    assert await accounts.authenticate(db, redis_client, "new-owner@example.com", "long enough pass", "10.9.9.9")
