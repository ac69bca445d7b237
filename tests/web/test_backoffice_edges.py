"""Back-office rough edges of issue 18: the invite form per role, a link to copy (nothing is emailed), the accept
page naming who and what is accepted, server messages next to the fields, full-width colons in Chinese."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.conftest import RunningApp
from tests.web.conftest import DISTRICT, SHOP_X, Browser, People, hidden, signed_in
from tests.web.test_crowd_and_hours import field_error


def part(page: str, role: str) -> str:
    """The opening tag of the form's part for one role."""
    match = re.search(r'<div[^>]*data-for-role="%s"[^>]*>' % role, page)
    assert match, f"no part for {role}"
    return match.group(0)


async def test_the_invite_form_shows_the_part_for_the_role(people: People, app_server: RunningApp) -> None:
    operator = await signed_in(app_server, people.operator, **{"accept-language": "en"})
    page = await operator.form_page("/admin/invite")
    assert 'name="district_ids"' not in page and " hidden" not in part(page, "merchant")
    assert '<option value="operator"' not in page
    admin = await signed_in(app_server, people.admin, **{"accept-language": "en"})
    as_merchant = await admin.form_page("/admin/invite")
    assert " hidden" not in part(as_merchant, "merchant") and " hidden" in part(as_merchant, "operator")
    as_operator = await admin.form_page("/admin/invite?role=operator")
    assert " hidden" in part(as_operator, "merchant") and " hidden" not in part(as_operator, "operator")
    as_admin = await admin.form_page("/admin/invite?role=admin")
    assert " hidden" in part(as_admin, "merchant") and " hidden" in part(as_admin, "operator")
    assert 'novalidate' in as_merchant and '<script src="/admin/static/invite.js" defer></script>' in as_merchant

    # without JavaScript a changed role reaches the server, which says what is missing next to the field
    before = await admin.get("/admin/audit")
    bad = await admin.post("/admin/invite", {"email": "not an email", "role": "operator"})
    assert bad.status_code == 422
    assert field_error(bad.text, "f-email") and field_error(bad.text, "f-district_ids") == "This field is required."
    assert " hidden" not in part(bad.text, "operator") and " hidden" in part(bad.text, "merchant")
    assert 'value="not an email"' in bad.text
    assert (await admin.get("/admin/audit")).text.count("<tr") == before.text.count("<tr")
    await operator.aclose()
    await admin.aclose()


async def test_the_link_is_to_copy_and_the_accept_page_says_who_and_what(
        db: Any, people: People, app_server: RunningApp) -> None:
    operator = await signed_in(app_server, people.operator, **{"accept-language": "zh-CN"})
    await operator.form_page("/admin/invite")
    email = f"shop-{uuid.uuid4().hex[:6]}@example.com"
    done = await operator.post("/admin/invite", {"email": email, "role": "merchant", "merchant_ids": SHOP_X})
    assert done.status_code == 200, done.text
    assert "会收到" not in done.text and "系统不会发送邮件：请复制下面的链接" in done.text
    assert '<button type="button" class="secondary" data-copy="invitation-link" hidden>复制链接</button>' in done.text
    assert "有效期至：" in done.text and "有效期至:" not in done.text
    link = re.search(r'id="invitation-link" type="text" readonly value="([^"]+)"', done.text)
    assert link
    path = link.group(1).split(app_server.url, 1)[1]

    visitor = Browser(app_server, **{"accept-language": "en"})
    page = await visitor.get(path)
    assert page.status_code == 200
    assert f"You are accepting the invitation for {email} as merchant." in page.text
    mismatch = await visitor.post(path, {"csrf": hidden(page.text, "csrf"), "password": "a-long-password-1",
                                         "password2": "another-password-2"}, csrf=False)
    assert mismatch.status_code == 422 and field_error(mismatch.text, "f-password2")
    assert email in mismatch.text
    assert (await visitor.get(path.replace(path.rsplit("/", 1)[1], "no-such-token"))).status_code == 404
    assert await db.accounts.find_one({"email": email}) is None
    await visitor.aclose()
    await operator.aclose()


async def test_chinese_pages_use_full_width_colons(people: People, app_server: RunningApp) -> None:
    merchant = await signed_in(app_server, people.merchant_a, **{"accept-language": "zh-CN"})
    profile = await merchant.form_page(f"/admin/merchants/{SHOP_X}")
    assert "商圈：" in profile and "商户后台" in profile
    operator = await signed_in(app_server, people.operator, **{"accept-language": "zh-CN"})
    crowd = await operator.form_page(f"/admin/districts/{DISTRICT}/crowd")
    assert re.search(r"[\u4e00-\u9fff]: ", crowd) is None
    assert "商圈运营后台" in crowd and "商户后台" not in crowd
    await merchant.aclose()
    await operator.aclose()
