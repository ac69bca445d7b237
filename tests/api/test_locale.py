"""Locale negotiation, the explicit argument, fallback and the response extension."""

from __future__ import annotations

from typing import Any

import httpx

from server.api.ids import to_global
from tests.conftest import RunningApp, gql

HQB = to_global("District", "huaqiangbei")
QUERY = '{ district(id: "%s") { name } }' % HQB


async def test_accept_language_chooses_the_locale(http: httpx.AsyncClient) -> None:
    cases = [("zh-HK,zh;q=0.9", "華強北", "zh-HK"), ("en-US,en;q=0.8", "Huaqiangbei", "en"),
             ("zh-CN", "华强北", "zh-CN"), ("fr-FR", "华强北", "zh-CN"), ("zh-TW", "華強北", "zh-HK")]
    for header, name, locale in cases:
        body = await gql(http, QUERY, headers={"accept-language": header})
        assert body["data"]["district"]["name"] == name, header
        assert body["extensions"]["locale"] == locale


async def test_locale_argument_overrides_the_header(http: httpx.AsyncClient) -> None:
    body = await gql(http, '{ district(id: "%s", locale: "en") { name } }' % HQB,
                     headers={"accept-language": "zh-HK"})
    assert body["data"]["district"]["name"] == "Huaqiangbei"
    assert body["extensions"]["locale"] == "en"


async def test_missing_zh_hk_text_falls_back_to_zh_cn(http: httpx.AsyncClient, db_client: Any,
                                                      app_server: RunningApp) -> None:
    doc = await db_client[app_server.db_name].merchants.find_one({"description.zh-HK": {"$exists": False},
                                                                  "description.zh-CN": {"$exists": True}})
    assert doc is not None, "the content keeps a few zh-HK descriptions out to exercise the fallback"
    body = await gql(http, '{ merchant(id: "%s", locale: "zh-HK") { description } }'
                     % to_global("Merchant", doc["_id"]))
    assert body["data"]["merchant"]["description"] == doc["description"]["zh-CN"]


async def test_unknown_locale_argument_is_a_coded_error(http: httpx.AsyncClient) -> None:
    body = await gql(http, '{ districts(locale: "klingon") { name } }')
    assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED_LOCALE"
