"""Push campaigns: composed by a district operator, sent by the worker, kept as inbox items.

A campaign document (collection `push_campaigns`) is written whole on create; later
changes are plain `$set`s of strings and numbers (status) and `$inc`s of the counters
under `stats`, so no datetime is ever `$set` onto an existing document (nx-27017 would
store it as a string).  Operational times the worker compares are epoch seconds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz
from server.domain.accounts.models import Actor
from server.domain.audit.repository import record as audit
from server.domain.errors import NotFound
from server.domain.forms import Problems
from server.domain.i18n import LOCALES, Localized, pick
from server.domain.push.models import TOPICS
from server.push.encode import MAX_TTL, EncodeError, PayloadTooLarge, Urgency, check_payload, check_topic
from server.services.mongo import Doc

COLLECTION: Final = "push_campaigns"
MIN_TTL: Final = 60
MAX_TITLE: Final = 120
MAX_BODY: Final = 1000
MAX_URL: Final = 500
MAX_DISTRICTS: Final = 50

SENDING: Final = "sending"
CANCELLED: Final = "cancelled"
STATUSES: Final = (SENDING, CANCELLED)

# Fan-out stages: "new" until a worker expands the audience onto the stream, then "expanded".
STAGE_NEW: Final = "new"
STAGE_EXPANDING: Final = "expanding"
STAGE_EXPANDED: Final = "expanded"

# Counters under `stats` (all integers, only ever `$inc`ed, except `targeted` which the expansion sets).
STATS: Final = ("targeted", "delivered", "expired", "failed", "too_large", "blocked", "rate_limited", "retried",
                "cancelled", "timed_out", "skipped", "clicked")

# Message keys (server/web/i18n.py MESSAGES) this module raises besides the shared ones.
URL_INVALID: Final = "push_url_invalid"
TOPIC_INVALID: Final = "push_topic_invalid"
PAYLOAD_TOO_LARGE: Final = "push_payload_too_large"
FESTIVAL_ENDED: Final = "push_festival_ended"
MESSAGE_KEYS: Final = (URL_INVALID, TOPIC_INVALID, PAYLOAD_TOO_LARGE, FESTIVAL_ENDED, "required", "too_long",
                       "unknown_district", "invalid_choice", "out_of_range", "not_found")


@dataclass(frozen=True, slots=True)
class CampaignInput:
    title: Localized
    body: Localized
    district_ids: list[str]
    topics: list[str]
    url: Localized = field(default_factory=dict)
    locales: list[str] = field(default_factory=list)  # empty: every locale
    ttl: int = 24 * 3600
    urgency: str = Urgency.NORMAL.value
    collapse_topic: str | None = None
    festival_id: str | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    title: Localized
    body: Localized
    url: Localized
    district_ids: tuple[str, ...]
    topics: tuple[str, ...]
    locales: tuple[str, ...]
    ttl: int
    urgency: Urgency
    collapse_topic: str | None
    festival_id: str | None
    status: str
    stage: str
    created_at: datetime
    created_ts: float  # epoch seconds of created_at: the worker's clock for TTLs
    created_by: str | None
    stats: dict[str, int]

    @property
    def expires_ts(self) -> float:
        return self.created_ts + self.ttl

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Campaign:
        raw_stats = doc.get("stats") or {}
        status = str(doc.get("status", SENDING))
        return cls(
            id=str(doc["_id"]), title=dict(doc.get("title") or {}), body=dict(doc.get("body") or {}),
            url=dict(doc.get("url") or {}), district_ids=tuple(str(d) for d in doc.get("district_ids") or ()),
            topics=tuple(str(t) for t in doc.get("topics") or () if t in TOPICS),
            locales=tuple(str(loc) for loc in doc.get("locales") or () if loc in LOCALES),
            ttl=int(doc["ttl"]), urgency=Urgency(str(doc.get("urgency", "normal"))),
            collapse_topic=str(doc["collapse_topic"]) if doc.get("collapse_topic") else None,
            festival_id=str(doc["festival_id"]) if doc.get("festival_id") else None,
            status=status if status in STATUSES else SENDING, stage=str(doc.get("stage", STAGE_NEW)),
            created_at=doc["created_at"], created_ts=float(doc["created_ts"]),
            created_by=str(doc["created_by"]) if doc.get("created_by") else None,
            stats={name: int(raw_stats.get(name) or 0) for name in STATS},
        )

    def localized(self, locale: str) -> tuple[str, str, str]:
        """(title, body, url) in `locale`, with the zh-HK → zh-CN → en fallback."""
        return pick(self.title, locale), pick(self.body, locale), pick(self.url, locale) or "/"

    def payload(self, locale: str) -> bytes:
        """The push message's plaintext for a subscriber reading `locale`."""
        title, body, url = self.localized(locale if locale in LOCALES else "zh-CN")
        return json.dumps({"id": self.id, "title": title, "body": body, "url": url}, ensure_ascii=False,
                          separators=(",", ":")).encode()


def _check_url(p: Problems, urls: Localized) -> Localized:
    for locale, url in urls.items():
        if (not url.startswith("/") or url.startswith("//") or "\\" in url
                or any(c.isspace() or ord(c) < 32 for c in url)):
            p.add(f"url.{locale}", URL_INVALID)
    return urls


async def _check_ttl(db: AsyncDatabase[Doc], p: Problems, data: CampaignInput, now: datetime) -> int:
    ttl = p.integer("ttl", data.ttl, MIN_TTL, MAX_TTL, required=True) or MIN_TTL
    if data.festival_id:
        festival = await db.festivals.find_one({"_id": data.festival_id}, {"ends_at": 1})
        ends_at = festival.get("ends_at") if festival else None
        if not isinstance(ends_at, datetime):
            p.add("festivalId", "not_found")
            return ttl
        left = int((ends_at - now).total_seconds())
        if left < MIN_TTL:
            p.add("festivalId", FESTIVAL_ENDED)
            return ttl
        ttl = min(ttl, left)
    return ttl


async def create(db: AsyncDatabase[Doc], actor: Actor, data: CampaignInput, *, now: datetime) -> Campaign:
    """Validate, authorize (an operator of every target district, or an admin) and store a campaign to send now."""
    districts = sorted(set(data.district_ids))
    if districts:
        authz.district_operator(actor, districts, "districts")
    else:
        authz.require_scope(actor, "districts")
    p = Problems()
    title = p.localized("title", data.title, required=True, max_len=MAX_TITLE)
    body = p.localized("body", data.body, required=True, max_len=MAX_BODY)
    url = _check_url(p, p.localized("url", data.url, required=False, max_len=MAX_URL))
    if not districts:
        p.add("districtIds", "required")
    elif len(districts) > MAX_DISTRICTS:
        p.add("districtIds", "too_long")
    elif await db.districts.count_documents({"_id": {"$in": districts}}) != len(districts):
        p.add("districtIds", "unknown_district")
    topics = sorted(set(data.topics))
    if not topics:
        p.add("topics", "required")
    elif not set(topics) <= set(TOPICS):
        p.add("topics", "invalid_choice")
    locales = sorted(set(data.locales) or set(LOCALES))
    if not set(locales) <= set(LOCALES):
        p.add("locales", "invalid_choice")
    if data.urgency not in {u.value for u in Urgency}:
        p.add("urgency", "invalid_choice")
    collapse = data.collapse_topic or None
    if collapse is not None:
        try:
            check_topic(collapse)
        except EncodeError:
            p.add("collapseTopic", TOPIC_INVALID)
    ttl = await _check_ttl(db, p, data, now)
    campaign_id = uuid.uuid4().hex
    doc: dict[str, Any] = {
        "_id": campaign_id, "title": title, "body": body, "url": url, "district_ids": districts, "topics": topics,
        "locales": locales, "ttl": ttl, "urgency": data.urgency, "collapse_topic": collapse,
        "festival_id": data.festival_id or None, "status": SENDING, "stage": STAGE_NEW, "created_at": now,
        "created_ts": now.timestamp(), "created_by": actor.account_id, "stats": dict.fromkeys(STATS, 0),
    }
    if not p.fields:
        draft = Campaign.from_doc(doc)
        for locale in LOCALES:  # every reader's message must fit one push record
            try:
                check_payload(draft.payload(locale))
            except PayloadTooLarge:
                p.add(f"body.{locale}" if locale in body else "body.zh-CN", PAYLOAD_TOO_LARGE)
    p.raise_if_any()
    await db[COLLECTION].insert_one(doc)
    await audit(db, actor, "push_campaign.create", "push_campaign", campaign_id, districts, None, doc)
    return Campaign.from_doc(doc)


async def get(db: AsyncDatabase[Doc], campaign_id: str) -> Campaign | None:
    doc = await db[COLLECTION].find_one({"_id": campaign_id})
    return Campaign.from_doc(doc) if doc else None


async def for_operator(db: AsyncDatabase[Doc], actor: Actor, campaign_id: str) -> Campaign:
    """A campaign whose stats `actor` may read: an operator of all its districts, or an admin."""
    authz.require_scope(actor, "districts")
    campaign = await get(db, campaign_id) if len(campaign_id) <= 64 else None
    if campaign is None:
        raise NotFound("no such campaign")
    authz.district_operator(actor, list(campaign.district_ids), "districts")
    return campaign


async def cancel(db: AsyncDatabase[Doc], actor: Actor, campaign_id: str) -> Campaign:
    """Stop what is not yet sent: the worker checks the status before every message (idempotent)."""
    campaign = await for_operator(db, actor, campaign_id)
    if campaign.status != CANCELLED:
        await db[COLLECTION].update_one({"_id": campaign.id}, {"$set": {"status": CANCELLED}})
        await audit(db, actor, "push_campaign.cancel", "push_campaign", campaign.id, list(campaign.district_ids),
                    {"status": campaign.status}, {"status": CANCELLED})
    after = await get(db, campaign.id)
    assert after is not None
    return after


async def count_click(db: AsyncDatabase[Doc], campaign_id: str) -> bool:
    """A shopper opened a campaign's notification (reported by the service worker); False if unknown."""
    if not (isinstance(campaign_id, str) and len(campaign_id) == 32 and campaign_id.isalnum()):
        return False
    result = await db[COLLECTION].update_one({"_id": campaign_id}, {"$inc": {"stats.clicked": 1}})
    return result.matched_count == 1
