from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from server.domain.push.endpoints import VapidError, origin_of
from server.push.vapid import VapidKeys, VapidSigner, check_subject, load_or_create_keys
from tests.conftest import unique_db
from tests.push.push_service import PushService


def test_keys_from_settings_roundtrip_and_mismatch() -> None:
    keys = VapidKeys.generate()
    again = VapidKeys.from_b64(keys.private_b64, keys.public_b64)
    assert again.public_b64 == keys.public_b64 and len(again.public_b64) == 87  # 65 bytes, unpadded
    assert VapidKeys.from_b64(keys.private_b64 + "=").public_b64 == keys.public_b64
    with pytest.raises(VapidError, match="does not match"):
        VapidKeys.from_b64(keys.private_b64, VapidKeys.generate().public_b64)
    with pytest.raises(VapidError):
        VapidKeys.from_b64("not+base64/url")
    with pytest.raises(VapidError):
        VapidKeys.from_b64(keys.public_b64)  # 65 bytes is not a private key


async def test_generated_once_and_shared_by_every_process(db_client: AsyncMongoClient[Any]) -> None:
    db = db_client[unique_db("vapid")]
    first = await load_or_create_keys(db)
    second = await load_or_create_keys(db)  # another process: reads what the first stored
    assert first.public_b64 == second.public_b64 and first.private_b64 == second.private_b64
    assert (await db.meta.count_documents({"_id": "vapid"})) == 1
    configured = VapidKeys.generate()
    assert (await load_or_create_keys(db, configured.private_b64)).public_b64 == configured.public_b64
    await db_client.drop_database(db.name)


def test_subject_must_be_mailto_or_https() -> None:
    assert check_subject("mailto:ops@shangquan.cn") == "mailto:ops@shangquan.cn"
    assert check_subject("https://shangquan.cn/contact") == "https://shangquan.cn/contact"
    for bad in ("ops@shangquan.cn", "http://shangquan.cn", "mailto:", ""):
        with pytest.raises(VapidError):
            check_subject(bad)
    with pytest.raises(VapidError):
        VapidSigner(VapidKeys.generate(), "nobody")


def test_origin_of() -> None:
    assert origin_of("https://fcm.googleapis.com/fcm/send/abc") == "https://fcm.googleapis.com"
    assert origin_of("https://push.example:443/x") == "https://push.example"
    assert origin_of("https://push.example:8443/x?y=1") == "https://push.example:8443"
    assert origin_of("http://127.0.0.1:9999/push/t") == "http://127.0.0.1:9999"


def test_header_verifies_and_is_cached_then_renewed(push_service: PushService, vapid_keys: VapidKeys) -> None:
    now = [1_800_000_000.0]
    signer = VapidSigner(vapid_keys, "mailto:ops@shangquan.cn", clock=lambda: now[0])
    endpoint = f"{push_service.url}/push/anything"
    header = signer.header(endpoint)
    assert header.startswith("vapid t=") and f"k={vapid_keys.public_b64}" in header
    # The push service checks real time; check the claims against a signer on the real clock too.
    real = VapidSigner(vapid_keys, "mailto:ops@shangquan.cn")
    claims = push_service.verify_vapid(real.header(endpoint))
    assert claims["aud"] == push_service.url and claims["sub"] == "mailto:ops@shangquan.cn"
    assert claims["k"] == vapid_keys.public_b64

    assert signer.header(endpoint + "/other") == header  # same origin, same token
    now[0] += 10 * 3600  # 2 h left: still fine
    assert signer.header(endpoint) == header and signer.signed == 1
    now[0] += 1.5 * 3600  # 30 min left: renewed
    renewed = signer.header(endpoint)
    assert renewed != header and signer.signed == 2
    assert signer.header("https://updates.push.services.mozilla.com/wpush/v2/x") != renewed
    assert signer.signed == 3


def test_expiry_is_12_hours(vapid_keys: VapidKeys) -> None:
    import base64
    import json
    import time

    header = VapidSigner(vapid_keys, "mailto:ops@shangquan.cn").header("https://push.example/x")
    token = header.split("t=", 1)[1].split(",", 1)[0]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == "https://push.example"
    assert abs(claims["exp"] - (time.time() + 12 * 3600)) < 5
