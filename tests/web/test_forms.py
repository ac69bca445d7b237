"""Forms of the back office: CSRF, security headers, per-field validation in the user's language with the values
kept, optimistic concurrency, and the translations behind all of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.domain import messages
from server.domain.offers import service as offers
from server.plumbing.headers import CSP, Kind
from tests.conftest import RunningApp
from tests.web.conftest import SHOP_X, Browser, People, signed_in
from tests.web.forms import new_offer_form, offer_form, profile_form

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "server" / "web" / "admin" / "templates"


@pytest.fixture
async def merchant(app_server: RunningApp, people: People) -> Any:
    browser = await signed_in(app_server, people.merchant_a)
    yield browser
    await browser.aclose()


async def _draft(db: Any, people: People, title: str = "并发测试") -> str:
    now = datetime.now(UTC)
    offer = await offers.create(db, people.merchant_a.actor(), SHOP_X, offers.OfferInput(
        title={"zh-CN": title}, kind="percent_off", percent_off=15, valid_from=now,
        valid_until=now + timedelta(days=2)))
    return offer.id


# ---------------------------------------------------------------- CSRF

async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
        db: Any, people: People, merchant: Browser, app_server: RunningApp) -> None:
    before = await db.merchants.find_one({"_id": SHOP_X})
    data = profile_form(before, phone="+86 755 0000 1111")
    other = await signed_in(app_server, people.merchant_a)  # the same account, another session: another token
    attempts = {
        "missing": {k: v for k, v in data.items()},
        "wrong": {**data, "csrf": "0" * 32},
        "another session's": {**data, "csrf": other.csrf},
        "non-ascii": {**data, "csrf": "令牌"},
    }
    for name, body in attempts.items():
        response = await merchant.post(f"/admin/merchants/{SHOP_X}", body, csrf=False)
        assert response.status_code == 403, name
        assert "表单已失效" in response.text
        assert await db.merchants.find_one({"_id": SHOP_X}) == before, name
    offer_id = await _draft(db, people)
    stored = await db.offers.find_one({"_id": offer_id})
    for url in (f"/admin/offers/{offer_id}/publish", f"/admin/offers/{offer_id}"):
        response = await merchant.post(url, {"version": str(stored["version"])}, csrf=False)
        assert response.status_code == 403 and await db.offers.find_one({"_id": offer_id}) == stored
    tokens = await db.api_tokens.count_documents({})
    assert (await merchant.post("/admin/tokens", {"name": "x", "scopes": ["offers"]}, csrf=False)).status_code == 403
    assert await db.api_tokens.count_documents({}) == tokens
    # and with the right token the same form works
    ok = await merchant.post(f"/admin/merchants/{SHOP_X}", data)
    assert ok.status_code == 303
    await other.aclose()


async def test_every_post_form_in_the_templates_carries_a_csrf_field() -> None:
    for path in TEMPLATES.glob("*.html"):
        html = path.read_text()
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", html, flags=re.S):
            assert 'name="csrf"' in form or "csrf_field()" in form, path.name


# ---------------------------------------------------------------- security headers

EXPECTED_HEADERS = {
    "content-security-policy": CSP[Kind.BACK_OFFICE],
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def _assert_headers(response: httpx.Response) -> None:
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get(name) == value, (str(response.url), response.status_code, name)


async def test_security_headers_on_every_back_office_response(app_server: RunningApp, merchant: Browser,
                                                              http: httpx.AsyncClient) -> None:
    csp = EXPECTED_HEADERS["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    anonymous = [await http.get(url) for url in ("/admin", "/admin/", "/admin/login", "/admin/static/admin.css",
                                                  "/admin/no-such-page", "/admin/invite/not-a-token")]
    anonymous.append(await http.post("/admin/login", data={"email": "a@b.cc", "password": "x"}))
    anonymous.append(await http.post("/admin/tokens", data={}))
    signed = [await merchant.get(url) for url in ("/admin/", f"/admin/merchants/{SHOP_X}/offers", "/admin/audit",
                                                   "/admin/offers/no-such-offer")]
    signed.append(await merchant.post(f"/admin/merchants/{SHOP_X}", {"version": "x"}))
    statuses = set()
    for response in [*anonymous, *signed]:
        _assert_headers(response)
        statuses.add(response.status_code)
    assert {200, 303, 308, 403, 404}.issubset(statuses), statuses
    assert anonymous[3].headers["content-type"].startswith("text/css")


async def test_uploads_and_oversized_bodies_are_refused(merchant: Browser) -> None:
    upload = await merchant.client.post(f"/admin/merchants/{SHOP_X}", data={"csrf": merchant.csrf},
                                        files={"photo": ("a.png", b"\x89PNG....", "image/png")})
    assert upload.status_code == 400
    _assert_headers(upload)
    huge = await merchant.post(f"/admin/merchants/{SHOP_X}", {"description.en": "x" * 400_000})
    assert huge.status_code == 413


async def test_templates_and_pages_have_no_inline_script_style_or_handlers(merchant: Browser) -> None:
    # a script only as a file of the back office's own (the CSP allows nothing else): no inline code
    inline = re.compile(r"<script(?![^>]*\ssrc=\"/admin/static/[a-z]+\.js\")|<style|\sstyle=|\son[a-z]+=", re.I)
    for path in TEMPLATES.glob("*.html"):
        assert not inline.search(path.read_text()), path.name
    for url in ("/admin/", f"/admin/merchants/{SHOP_X}", f"/admin/merchants/{SHOP_X}/offers/new",
                f"/admin/merchants/{SHOP_X}/products"):
        page = (await merchant.get(url)).text
        assert not inline.search(page), url
        # every visible form control has a label
        ids = set(re.findall(r'<(?:input|select|textarea)(?![^>]*type="(?:hidden|checkbox)")[^>]*\sid="([^"]+)"',
                             page))
        labelled = set(re.findall(r'<label for="([^"]+)"', page))
        assert ids <= labelled, (url, ids - labelled)


# ---------------------------------------------------------------- validation in the user's language

BAD_OFFER = {"title.zh-CN": "", "title.en": "Screen film deal", "description.zh-HK": "保留我寫的介紹",
             "percent_off": "abc", "coupon_code": "bad code!", "stock": "-5"}


async def _bad_offer(browser: Browser, **headers: str) -> httpx.Response:
    now = datetime.now(UTC)
    data = new_offer_form(now, now - timedelta(hours=1), **BAD_OFFER)
    return await browser.post(f"/admin/merchants/{SHOP_X}/offers/new", data, headers=headers)


async def test_validation_errors_per_field_in_chinese_with_the_values_kept(db: Any, merchant: Browser) -> None:
    count = await db.offers.count_documents({"merchant_id": SHOP_X})
    response = await _bad_offer(merchant, **{"accept-language": "zh-CN"})
    assert response.status_code == 422
    html = response.text
    assert '<html lang="zh-CN">' in html
    expected = {"title-zh-CN": "此项必填。", "percent_off": "请输入整数。", "coupon_code": "优惠码为 4–20 位",
                "stock": "数值超出允许范围。", "valid_until": "结束时间必须晚于开始时间。"}
    for field, text in expected.items():
        match = re.search(r'<p class="error" id="f-%s-err">([^<]*)</p>' % re.escape(field), html)
        assert match and text in match.group(1), field
    assert 'aria-invalid="true"' in html and "请修改以下内容后再保存" in html
    # what was typed stays in the form
    assert 'value="Screen film deal"' in html and 'value="bad code!"' in html and 'value="abc"' in html
    assert ">保留我寫的介紹</textarea>" in html
    assert await db.offers.count_documents({"merchant_id": SHOP_X}) == count


async def test_validation_errors_in_english_and_traditional_chinese(app_server: RunningApp, people: People) -> None:
    english = await signed_in(app_server, people.merchant_a, **{"accept-language": "en-GB,en;q=0.9"})
    html = (await _bad_offer(english)).text
    assert '<html lang="en">' in html
    for text in ("This field is required.", "Enter a whole number.", "A coupon code is 4–20 capital letters",
                 "The end must be after the start.", "Title (Simplified Chinese)"):
        assert text in html, text
    assert 'value="bad code!"' in html
    # ?lang= wins over the header and is remembered in a cookie
    hk = await english.get(f"/admin/merchants/{SHOP_X}/offers/new?lang=zh-HK")
    assert '<html lang="zh-HK">' in hk.text and "lang=zh-HK" in hk.headers["set-cookie"]
    assert '<html lang="zh-HK">' in (await _bad_offer(english)).text
    assert "此項必填。" in (await _bad_offer(english)).text
    await english.aclose()


async def test_profile_validation_keys_hours_and_location(db: Any, merchant: Browser) -> None:
    before = await db.merchants.find_one({"_id": SHOP_X})
    data = profile_form(before, phone="call me", lat="22.60", lng="114.20", categories=[], **{
        "hours.mon": "10:00-22:00, 25:00-26:00", "name.zh-CN": ""})
    response = await merchant.post(f"/admin/merchants/{SHOP_X}", data, headers={"accept-language": "en"})
    assert response.status_code == 422
    for text in ("Enter a phone number", "This location is outside the district.", "Choose 1 to 5 categories.",
                 "Write hours as 10:00-22:00", "This field is required."):
        assert text in response.text, text
    assert 'value="10:00-22:00, 25:00-26:00"' in response.text and 'value="call me"' in response.text
    assert await db.merchants.find_one({"_id": SHOP_X}) == before
    # full-width punctuation is understood
    fine = profile_form(before, **{"hours.sun": "10：00–14：00，17:00-02:00"})
    assert (await merchant.post(f"/admin/merchants/{SHOP_X}", fine)).status_code == 303
    assert (await db.merchants.find_one({"_id": SHOP_X}))["hours"]["sun"] == ["10:00-14:00", "17:00-02:00"]


async def test_datetime_local_is_read_as_shenzhen_time(db: Any, merchant: Browser) -> None:
    data = new_offer_form(datetime(2030, 1, 1, 2, 0, tzinfo=UTC), datetime(2030, 1, 2, 2, 0, tzinfo=UTC),
                          valid_from="2030-01-01T10:00", valid_until="2030-01-02T10:00",
                          **{"title.zh-CN": "时区测试"})
    assert (await merchant.post(f"/admin/merchants/{SHOP_X}/offers/new", data)).status_code == 303
    stored = await db.offers.find_one({"merchant_id": SHOP_X, "title.zh-CN": "时区测试"})
    assert stored["valid_from"] == datetime(2030, 1, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shenzhen is 02:00 UTC
    form = await merchant.get(f"/admin/offers/{stored['_id']}")
    assert 'value="2030-01-01T10:00"' in form.text
    unreadable = await merchant.post(f"/admin/offers/{stored['_id']}", {
        **data, "valid_from": "tomorrow-ish", "version": str(stored["version"])}, headers={"accept-language": "en"})
    assert unreadable.status_code == 422 and "This date and time can&#39;t be read" in unreadable.text


# ---------------------------------------------------------------- optimistic concurrency

async def test_two_people_save_the_same_offer_the_second_gets_a_conflict(db: Any, people: People,
                                                                         app_server: RunningApp) -> None:
    offer_id = await _draft(db, people, "原始标题")
    first, second = await signed_in(app_server, people.merchant_a), await signed_in(app_server, people.merchant_a)
    pages = [await b.form_page(f"/admin/offers/{offer_id}") for b in (first, second)]
    versions = [re.search(r'name="version" value="(\d+)"', p).group(1) for p in pages]  # type: ignore[union-attr]
    assert versions[0] == versions[1]
    stored = await db.offers.find_one({"_id": offer_id})
    saved = await first.post(f"/admin/offers/{offer_id}", offer_form(stored, **{"title.zh-CN": "第一个人的标题"}))
    assert saved.status_code == 303
    late = await second.post(f"/admin/offers/{offer_id}", offer_form(stored, **{
        "title.zh-CN": "第二个人的标题", "percent_off": "30"}))
    assert late.status_code == 409
    html = late.text
    assert "已被他人修改" in html and "你的修改还没有保存" in html
    current = html.split('class="conflict"', 1)[1].split("</section>", 1)[0]
    assert "第一个人的标题" in current and "第二个人的标题" not in current
    new_version = int(versions[0]) + 1
    assert f"当前版本：{new_version}" in current
    assert 'value="第二个人的标题"' in html  # the second person's typing isn't lost
    assert f'name="version" value="{new_version}"' in html
    after = await db.offers.find_one({"_id": offer_id})
    assert after["title"]["zh-CN"] == "第一个人的标题" and after["percent_off"] == 15
    assert after["version"] == new_version
    # a stale publish button is a conflict too
    stale = await second.post(f"/admin/offers/{offer_id}/publish", {"version": versions[0]})
    assert stale.status_code == 409 and (await db.offers.find_one({"_id": offer_id}))["status"] == "draft"
    for browser in (first, second):
        await browser.aclose()


async def test_two_people_save_the_same_profile_the_second_gets_a_conflict(db: Any, people: People,
                                                                           app_server: RunningApp) -> None:
    operator = await signed_in(app_server, people.operator, **{"accept-language": "en"})
    stored = await db.merchants.find_one({"_id": SHOP_X})
    assert (await operator.post(f"/admin/merchants/{SHOP_X}", profile_form(stored, phone="+86 755 1111 2222"))
            ).status_code == 303
    late = await operator.post(f"/admin/merchants/{SHOP_X}", profile_form(stored, phone="+86 755 3333 4444"))
    assert late.status_code == 409 and "Changed by someone else" in late.text and "+86 755 1111 2222" in late.text
    assert (await db.merchants.find_one({"_id": SHOP_X}))["phone"] == "+86 755 1111 2222"
    await operator.aclose()


# ---------------------------------------------------------------- translations

def _domain_keys() -> set[str]:
    keys: set[str] = set()
    for path in (ROOT / "server" / "domain").rglob("*.py"):
        source = path.read_text()
        keys |= set(re.findall(r"""\.add\([^,]+,\s*"([a-z_]+)"\)""", source))
        keys |= set(re.findall(r"""Invalid\(\{"[a-z_.]+":\s*"([a-z_]+)"\}\)""", source))
        keys |= set(re.findall(r'problems\["[a-z_.]+"\]\s*=\s*"([a-z_]+)"', source))
        keys |= set(re.findall(r"""check_strength[\s\S]*?return "([a-z_]+)\"""", source))
        keys |= set(re.findall(r'^\s*return "(password_[a-z_]+)"', source, flags=re.M))
        if 'f"cannot_{action}"' in source:
            keys |= {"cannot_publish", "cannot_withdraw"}
        if '"required" if value in (None, "") else "bad_datetime"' in source:
            keys |= {"required", "bad_datetime"}
    return keys


def test_every_domain_message_key_is_translated_in_three_locales() -> None:
    keys = _domain_keys()
    listed = {"required", "too_long", "not_a_number", "out_of_range", "bad_datetime", "coupon_format",
              "ends_before_start", "unknown_festival", "festival_elsewhere", "phone_format", "categories_invalid",
              "hours_format", "coordinates_invalid", "outside_district", "unknown_area", "slug_format", "slug_taken",
              "unknown_district", "invalid_choice", "cannot_publish", "cannot_withdraw", "not_in_festival",
              "max_below_min", "password_too_short", "password_too_long", "email_invalid", "email_taken",
              "login_failed", "role_invalid", "scopes_invalid", "unknown_merchant"}
    assert listed <= keys, listed - keys
    for key in keys | {"conflict", "rate_limited", "password_mismatch", "bad_date"}:
        texts = messages.MESSAGES.get(key)
        assert texts and set(texts) == {"zh-CN", "zh-HK", "en"} and all(texts.values()), key
        assert len(set(texts.values())) > 1, key  # really translated, not copied


def test_every_text_the_templates_ask_for_exists() -> None:
    from server.domain.accounts.models import ROLES
    from server.domain.authz import SCOPES
    from server.domain.crowd.models import LEVELS, SENSOR_KINDS
    from server.domain.festivals.models import KINDS as FESTIVAL_KINDS
    from server.domain.i18n import LOCALES
    from server.domain.merchants.hours import DAYS
    from server.domain.offers.models import KINDS, STATUSES
    from server.domain.products.models import CATEGORIES

    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(["']([a-zA-Z0-9_-]+)["']\s*[,)]""", path.read_text()))
    for prefix, values in (("role_", ROLES), ("scope_", SCOPES), ("fkind_", FESTIVAL_KINDS), ("locale_", LOCALES),
                           ("day_", DAYS), ("kind_", KINDS), ("status_", STATUSES), ("pcat_", CATEGORIES),
                           ("decision_", ("featured", "rejected", "none")), ("ok_", messages.NOTICES),
                           ("skind_", SENSOR_KINDS), ("level_", LEVELS), ("sensor_status_", ("active", "revoked")),
                           ("rule_state_", ("armed", "raised")), ("alert_kind_", ("raised", "cleared"))):
        used |= {prefix + v for v in values}
    missing = sorted(k for k in used if k not in messages.MESSAGES)
    assert not missing
    for key, texts in messages.MESSAGES.items():
        assert set(texts) == {"zh-CN", "zh-HK", "en"} and all(texts.values()), key
        fields = {tuple(sorted(re.findall(r"\{(\w+)\}", t))) for t in texts.values()}
        assert len(fields) == 1, f"{key}: placeholders differ between locales"


def test_field_labels() -> None:
    assert messages.field_label("title.zh-CN", "zh-CN") == "标题（简体中文）"
    assert messages.field_label("title.en", "en") == "Title (English)"
    assert messages.field_label("hours", "zh-HK") == "營業時間"
    assert messages.translate("no_such_key", "en") == "no_such_key"


async def test_festival_and_product_conflicts_show_what_is_stored(db: Any, people: People,
                                                                   app_server: RunningApp) -> None:
    from tests.web.forms import festival_form, product_form

    admin = await signed_in(app_server, people.admin, **{"accept-language": "en"})
    festival = await db.festivals.find_one({"_id": "national-day-golden-week-2026"})
    assert (await admin.post(f"/admin/festivals/{festival['_id']}", festival_form(
        festival, **{"name.en": "Golden Week, first save"}))).status_code == 303
    late = await admin.post(f"/admin/festivals/{festival['_id']}", festival_form(
        festival, **{"name.en": "Golden Week, second save"}))
    assert late.status_code == 409 and "Golden Week, first save" in late.text.split('class="conflict"', 1)[1]
    assert (await db.festivals.find_one({"_id": festival["_id"]}))["name"]["en"] == "Golden Week, first save"

    product = await db.products.find_one({"_id": "shajing-oyster"})  # a shared specialty: admins edit it
    assert (await admin.post("/admin/products/shajing-oyster", product_form(product, price_max_yuan="300"))
            ).status_code == 303
    late = await admin.post("/admin/products/shajing-oyster", product_form(product, price_max_yuan="999.99"))
    assert late.status_code == 409 and ">300<" in late.text.split('class="conflict"', 1)[1]  # yuan, not fen
    assert 'value="999.99"' in late.text
    assert (await db.products.find_one({"_id": "shajing-oyster"}))["price_max_fen"] == 30000
    await admin.aclose()
