"""Form bodies as a browser would send them, built from what is stored (so versions are current)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOCALES = ("zh-CN", "zh-HK", "en")


def local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def localized(prefix: str, texts: dict[str, str] | None) -> dict[str, str]:
    return {f"{prefix}.{loc}": (texts or {}).get(loc, "") for loc in LOCALES}


def profile_form(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    lng, lat = doc["location"]["coordinates"]
    data: dict[str, Any] = {
        **localized("name", doc["name"]), **localized("description", doc.get("description")),
        **localized("address", doc.get("address")), "phone": doc["phone"], "categories": list(doc["categories"]),
        "price_level": str(doc["price_level"]), "lat": str(lat), "lng": str(lng), "area_id": doc["area_id"],
        "version": str(doc.get("version") or 0),
        **{f"hours.{day}": ", ".join(spans) for day, spans in (doc.get("hours") or {}).items()},
        "exceptions": "\n".join(f"{e['date']} {', '.join(e['spans']) or 'closed'}"
                                for e in doc.get("hours_exceptions") or []),
    }
    data.update(changes)
    return data


def yuan(fen: int | None) -> str:
    """What the back office shows for an amount in fen: merchants read and type yuan."""
    return "" if fen is None else f"{fen / 100:.2f}"


def offer_form(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    def text(value: Any) -> str:
        return "" if value is None else str(value)

    data: dict[str, Any] = {
        **localized("title", doc["title"]), **localized("description", doc.get("description")), "kind": doc["kind"],
        "percent_off": text(doc.get("percent_off")), "amount_off_yuan": yuan(doc.get("amount_off_fen")),
        "min_spend_yuan": yuan(doc.get("min_spend_fen")), "coupon_code": text(doc.get("coupon_code")),
        "valid_from": local(doc["valid_from"]), "valid_until": local(doc["valid_until"]),
        "stock": text(doc.get("stock")), "festival_id": text(doc.get("festival_id")),
        "version": str(doc.get("version") or 0),
    }
    data.update(changes)
    return data


def festival_form(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        **localized("name", doc["name"]), **localized("description", doc.get("description")), "kind": doc["kind"],
        "starts_on": doc["starts_on"], "ends_on": doc["ends_on"], "district_ids": list(doc["district_ids"]),
        "version": str(doc.get("version") or 0),
    }
    data.update(changes)
    return data


def product_form(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        **localized("name", doc["name"]), **localized("story", doc.get("story")), **localized("unit", doc.get("unit")),
        "category": doc["category"], "price_min_yuan": yuan(doc["price_min_fen"]),
        "price_max_yuan": yuan(doc["price_max_fen"]), "version": str(doc.get("version") or 0),
    }
    data.update(changes)
    return data


def new_offer_form(start: datetime, end: datetime, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title.zh-CN": "手机贴膜八折", "title.zh-HK": "手機貼膜八折", "title.en": "20% off screen protectors",
        "description.zh-CN": "到店出示即可。", "description.zh-HK": "", "description.en": "Show this at the counter.",
        "kind": "percent_off", "percent_off": "20", "amount_off_yuan": "", "min_spend_yuan": "50",
        "coupon_code": "FILM-20", "valid_from": local(start), "valid_until": local(end), "stock": "100",
        "festival_id": "",
    }
    data.update(changes)
    return data
