"""核销 in the back office: check a typed code, see the offer, confirm once; refusals next to the field."""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import uuid
from typing import Any

from server.domain.coupons import service as coupons
from server.domain.coupons.models import display, new_code
from server.settings import ROOT
from tests.conftest import RunningApp
from tests.support import published_offer
from tests.web.conftest import SHOP_X, People, hidden, signed_in


async def claimed(db: Any, people: People, **offer: Any) -> tuple[Any, str]:
    o = await published_offer(db, people.admin, SHOP_X, **offer)
    from datetime import UTC, datetime

    c = await coupons.claim(db, str(uuid.uuid4()), o.id, datetime.now(UTC))
    return o, display(c.coupon.code)


def field_error(page: str) -> str:
    match = re.search(r'<p class="error" id="f-code-err">([^<]*)</p>', page)
    return html.unescape(match.group(1)) if match else ""


async def test_check_then_confirm_a_double_tap_redeems_once(app_server: RunningApp, db: Any, people: People) -> None:
    offer, code = await claimed(db, people, stock=3)
    shop = await signed_in(app_server, people.merchant_a, **{"accept-language": "zh-CN"})
    await shop.form_page("/admin/redeem")
    preview = await shop.post("/admin/redeem", {"step": "check", "code": code.lower().replace("-", "")})
    assert preview.status_code == 200
    assert code in preview.text and "满100减20" in preview.text and "立减 ¥20，满 ¥100 可用" in preview.text
    token = hidden(preview.text, "form_token")
    taps = await asyncio.gather(*(shop.post("/admin/redeem", {"step": "confirm", "code": code, "form_token": token})
                                  for _ in range(2)))
    assert [t.status_code for t in taps] == [200, 200]
    assert all(f"已核销：{code}" in t.text for t in taps), "both taps of one form see it redeemed"
    assert await db.audit.count_documents({"action": "coupon.redeem", "target_id": code.replace("-", "")}) == 1

    again = await shop.post("/admin/redeem", {"step": "check", "code": code})
    assert again.status_code == 422 and "核销过" in field_error(again.text)
    offers_page = await shop.get(f"/admin/merchants/{SHOP_X}/offers")
    card = offers_page.text.split(f'/admin/offers/{offer.id}"', 1)[1].split("</li>", 1)[0]
    assert '<dd class="claims">1</dd>' in card and '<dd class="redemptions">1</dd>' in card
    assert '<dd class="stock">2</dd>' in card


async def test_refusals_are_written_next_to_the_field(app_server: RunningApp, db: Any, people: People) -> None:
    _, code = await claimed(db, people)
    address = f"10.19.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"  # its own count of misses
    other = await signed_in(app_server, people.merchant_b, **{"accept-language": "en", "x-forwarded-for": address})
    await other.form_page("/admin/redeem")
    theirs = await other.post("/admin/redeem", {"step": "check", "code": code})
    assert theirs.status_code == 422 and "another shop" in field_error(theirs.text)
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert "typo" in field_error((await other.post("/admin/redeem", {"step": "check", "code": typo})).text)
    unknown = await other.post("/admin/redeem", {"step": "check", "code": display(new_code())})
    assert "no coupon" in field_error(unknown.text)
    assert 'aria-invalid="true"' in unknown.text


VENDOR = ROOT / "server" / "web" / "admin" / "static" / "vendor"


def test_the_vendored_qr_reader_is_the_pinned_unmodified_file() -> None:
    table = (VENDOR / "README.md").read_text()
    rows = re.findall(r"^\| ([\w.-]+\.js) \|[^|]+\| ([\d.]+) \| Apache-2.0, (LICENSE\.[\w-]+) \| ([0-9a-f]{64}) \|$",
                      table, flags=re.M)
    assert {name for name, *_ in rows} == {p.name for p in VENDOR.iterdir() if p.suffix == ".js"} == {"jsQR.js"}
    for name, _version, licence, sha in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == sha, name
        assert "Apache License" in (VENDOR / licence).read_text(), licence
