"""Push campaigns: composed by a district operator, sent by the worker, kept as inbox items.

A campaign document (collection `push_campaigns`) is written whole on create; later
changes are plain `$set`s of strings and numbers (status) and `$inc`s of the counters
under `stats`, so no datetime is ever `$set` onto an existing document (nx-27017 would
store it as a string).  Operational times the worker compares are epoch seconds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz
from server.domain.actor import Actor
from server.domain.audit.repository import record as audit
from server.domain.errors import NotFound
from server.domain.forms import Problems
from server.domain.i18n import LOCALES, Localized, pick
from server.domain.push.models import COLLECTION as SUBSCRIPTIONS
from server.domain.push.models import TOPICS
from server.push.encode import MAX_TTL, EncodeError, PayloadTooLarge, Urgency, check_payload, check_topic
from server.services.mongo import Doc

COLLECTION: Final = "push_campaigns"
MIN_TTL: Final = 60
MAX_TITLE: Final = 120
MAX_BODY: Final = 1000
MAX_URL: Final = 500
MAX_DISTRICTS: Final = 50

# A campaign waits for a second operator when four-eyes approval is on (PUSH_APPROVAL), then sends
# from `send_at_ts` (epoch seconds: now, or the scheduled time); cancelling stops what is not yet sent.
AWAITING_APPROVAL: Final = "awaiting_approval"
SENDING: Final = "sending"
CANCELLED: Final = "cancelled"
STATUSES: Final = (AWAITING_APPROVAL, SENDING, CANCELLED)

# Who composed it: an operator, or the worker turning a crowd alert into a message.
SOURCE_OPERATOR: Final = "operator"
SOURCE_CROWD_ALERT: Final = "crowd_alert"
MAX_SCHEDULE_AHEAD: Final = 28 * 24 * 3600
# A send time this close is "now": times written with $set come back rounded to ~15 significant digits on
# nx-27017 (an approval's send time can read a few µs past the approval), and processes' clocks differ.
SCHEDULE_GRACE: Final = 1.0

# Fan-out stages: "new" until a worker expands the audience onto the stream, then "expanded".
STAGE_NEW: Final = "new"
STAGE_EXPANDING: Final = "expanding"
STAGE_EXPANDED: Final = "expanded"

# Counters under `stats` (all integers, `$inc`ed as outcomes are written; the expansion sets `targeted`, and a
# recount from the delivery records sets the final ones if a killed worker left them short: server/push/reconcile).
# `sent` counts messages handed to a push service (each subscriber at most once); `deferred` counts
# messages held back by quiet hours (sent later, or timed out); `capped` subscribers over the daily cap.
STATS: Final = ("targeted", "sent", "delivered", "expired", "failed", "too_large", "blocked", "rate_limited",
                "retried", "cancelled", "timed_out", "skipped", "deferred", "capped", "clicked")
# Outcomes after which a subscriber's message needs nothing more: the campaign is done when they add up.
FINAL_STATS: Final = ("delivered", "expired", "failed", "too_large", "blocked", "cancelled", "timed_out", "skipped",
                      "capped")

# Message keys (server/domain/messages.py MESSAGES) this module raises besides the shared ones.
URL_INVALID: Final = "push_url_invalid"
TOPIC_INVALID: Final = "push_topic_invalid"
PAYLOAD_TOO_LARGE: Final = "push_payload_too_large"
FESTIVAL_ENDED: Final = "push_festival_ended"
IMAGE_INVALID: Final = "push_image_invalid"
SEND_AT_PAST: Final = "push_send_at_past"
SEND_AT_TOO_FAR: Final = "push_send_at_too_far"
OWN_CAMPAIGN: Final = "push_own_campaign"
NOT_AWAITING: Final = "push_not_awaiting_approval"
MESSAGE_KEYS: Final = (URL_INVALID, TOPIC_INVALID, PAYLOAD_TOO_LARGE, FESTIVAL_ENDED, IMAGE_INVALID, SEND_AT_PAST,
                       SEND_AT_TOO_FAR, OWN_CAMPAIGN, NOT_AWAITING, "required", "too_long", "unknown_district",
                       "invalid_choice", "out_of_range", "not_found")


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
    image: Localized = field(default_factory=dict)  # https URL or app path per locale, shown in the notification
    send_at: datetime | None = None  # None: now (or when approved)


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
    image: Localized = field(default_factory=dict)
    send_at_ts: float = 0.0  # epoch seconds from which it may be sent (and shows in the inbox)
    source: str = SOURCE_OPERATOR
    approved_by: str | None = None
    request_id: str | None = None  # the request that composed it, carried into the worker's log lines

    @property
    def expires_ts(self) -> float:
        return self.send_at_ts + self.ttl

    @property
    def send_at(self) -> datetime:
        return datetime.fromtimestamp(self.send_at_ts, UTC)

    def scheduled(self, now_ts: float) -> bool:
        return self.status == SENDING and self.send_at_ts > now_ts + SCHEDULE_GRACE

    def due(self, now_ts: float) -> bool:
        """Released and its send time has come."""
        return self.status == SENDING and not self.scheduled(now_ts)

    def state(self, now_ts: float) -> str:
        """What an operator sees: awaiting_approval, scheduled, sending, sent or cancelled."""
        if self.status in (CANCELLED, AWAITING_APPROVAL):
            return self.status
        if self.scheduled(now_ts):
            return "scheduled"
        return "sent" if self.finished() else "sending"

    def finished(self) -> bool:
        """Every targeted subscriber has a final outcome (only meaningful once the audience is expanded)."""
        return self.stage == STAGE_EXPANDED and sum(self.stats[name] for name in FINAL_STATS) >= self.stats["targeted"]

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
            image=dict(doc.get("image") or {}), send_at_ts=float(doc.get("send_at_ts") or doc["created_ts"]),
            source=str(doc.get("source") or SOURCE_OPERATOR),
            approved_by=str(doc["approved_by"]) if doc.get("approved_by") else None,
            request_id=str(doc["request_id"]) if doc.get("request_id") else None,
        )

    def localized(self, locale: str) -> tuple[str, str, str]:
        """(title, body, url) in `locale`, with the zh-HK → zh-CN → en fallback."""
        return pick(self.title, locale), pick(self.body, locale), pick(self.url, locale) or "/"

    def image_for(self, locale: str) -> str:
        return pick(self.image, locale)

    def payload(self, locale: str) -> bytes:
        """The push message's plaintext for a subscriber reading `locale`."""
        reader = locale if locale in LOCALES else "zh-CN"
        title, body, url = self.localized(reader)
        message = {"id": self.id, "title": title, "body": body, "url": url}
        if image := self.image_for(reader):
            message["image"] = image
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Preview:
    """What a subscriber reading `locale` would get, and whether it fits one push record."""
    locale: str
    title: str
    body: str
    url: str
    image: str
    payload_bytes: int
    fits: bool


def audience_filter(district_ids: Sequence[str], topics: Sequence[str], locales: Sequence[str]) -> dict[str, Any]:
    """The subscriptions a campaign reaches (one flat filter: nx-27017's `$and` path is slow)."""
    return {"districts": {"$in": list(district_ids)}, "topics": {"$in": list(topics)},
            "locale": {"$in": list(locales)}}


def _app_path(url: str) -> bool:
    return (url.startswith("/") and not url.startswith("//") and "\\" not in url
            and not any(c.isspace() or ord(c) < 32 for c in url))


def _check_url(p: Problems, urls: Localized) -> Localized:
    for locale, url in urls.items():
        if not _app_path(url):
            p.add(f"url.{locale}", URL_INVALID)
    return urls


def _check_image(p: Problems, images: Localized) -> Localized:
    """An app path, or an https URL with a host (the phone fetches it, so no plain http and no userinfo)."""
    for locale, image in images.items():
        if _app_path(image):
            continue
        parts = urlsplit(image)
        if (parts.scheme != "https" or not parts.hostname or "@" in parts.netloc
                or any(c.isspace() or ord(c) < 32 for c in image)):
            p.add(f"image.{locale}", IMAGE_INVALID)
    return images


def _check_send_at(p: Problems, send_at: datetime | None, now: datetime) -> float:
    if send_at is None:
        return now.timestamp()
    if send_at.tzinfo is None:  # "20:00" means Shanghai to an operator and UTC to a server: make them say
        p.add("sendAt", "bad_datetime")
        return now.timestamp()
    ts = send_at.timestamp()
    if ts < now.timestamp() - 60:  # a minute's grace for a form filled in slowly
        p.add("sendAt", SEND_AT_PAST)
    elif ts > now.timestamp() + MAX_SCHEDULE_AHEAD:
        p.add("sendAt", SEND_AT_TOO_FAR)
    return max(ts, now.timestamp())


async def _festival_end(db: AsyncDatabase[Doc], festival_id: str) -> float | None:
    festival = await db.festivals.find_one({"_id": festival_id}, {"ends_at": 1})
    ends_at = festival.get("ends_at") if festival else None
    if not isinstance(ends_at, datetime):
        return None
    return (ends_at if ends_at.tzinfo else ends_at.replace(tzinfo=UTC)).timestamp()


async def _check_ttl(db: AsyncDatabase[Doc], p: Problems, data: CampaignInput, send_ts: float) -> int:
    """The TTL counts from the send time and is clipped to the end of the linked festival."""
    ttl = p.integer("ttl", data.ttl, MIN_TTL, MAX_TTL, required=True) or MIN_TTL
    if data.festival_id:
        ends = await _festival_end(db, data.festival_id)
        if ends is None:
            p.add("festivalId", "not_found")
            return ttl
        left = int(ends - send_ts)
        if left < MIN_TTL:
            p.add("festivalId", FESTIVAL_ENDED)
            return ttl
        ttl = min(ttl, left)
    return ttl


def _authorize(actor: Actor, districts: list[str]) -> None:
    if districts:
        authz.district_operator(actor, districts, "districts")
    else:
        authz.require_scope(actor, "districts")


async def _validated(db: AsyncDatabase[Doc], actor: Actor, data: CampaignInput, *, now: datetime,
                     approval: bool, source: str, request_id: str | None,
                     campaign_id: str | None = None, check_size: bool = True) -> dict[str, Any]:
    """The campaign document `data` describes, or InvalidInput with every problem; shared by create and preview."""
    districts = sorted(set(data.district_ids))
    p = Problems()
    title = p.localized("title", data.title, required=True, max_len=MAX_TITLE)
    body = p.localized("body", data.body, required=True, max_len=MAX_BODY)
    url = _check_url(p, p.localized("url", data.url, required=False, max_len=MAX_URL))
    image = _check_image(p, p.localized("image", data.image, required=False, max_len=MAX_URL))
    if not districts:
        p.add("districtIds", "required")
    elif len(districts) > MAX_DISTRICTS:
        p.add("districtIds", "too_long")
    elif await _count(db, "districts", {"_id": {"$in": districts}}) != len(districts):
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
    send_ts = _check_send_at(p, data.send_at, now)
    ttl = await _check_ttl(db, p, data, send_ts)
    doc: dict[str, Any] = {
        "_id": campaign_id or uuid.uuid4().hex, "title": title, "body": body, "url": url, "image": image,
        "district_ids": districts, "topics": topics, "locales": locales, "ttl": ttl, "urgency": data.urgency,
        "collapse_topic": collapse, "festival_id": data.festival_id or None,
        "status": AWAITING_APPROVAL if approval else SENDING, "stage": STAGE_NEW,
        "created_at": now, "created_ts": now.timestamp(), "send_at_ts": send_ts,
        "created_by": actor.account_id, "source": source, "request_id": request_id,
        "stats": dict.fromkeys(STATS, 0),
    }
    if not p.fields and check_size:
        draft = Campaign.from_doc(doc)
        for locale in LOCALES:  # every reader's message must fit one push record
            if not _fits(draft.payload(locale)):
                p.add(f"body.{locale}" if locale in body else "body.zh-CN", PAYLOAD_TOO_LARGE)
    p.raise_if_any()
    return doc


def _fits(payload: bytes) -> bool:
    try:
        check_payload(payload)
    except PayloadTooLarge:
        return False
    return True


async def _count(db: AsyncDatabase[Doc], collection: str, query: dict[str, Any]) -> int:
    rows = await (await db[collection].aggregate([{"$match": query}, {"$count": "n"}])).to_list()
    return int(rows[0]["n"]) if rows else 0


async def create(db: AsyncDatabase[Doc], actor: Actor, data: CampaignInput, *, now: datetime,
                 approval: bool = False, source: str = SOURCE_OPERATOR, request_id: str | None = None,
                 campaign_id: str | None = None) -> Campaign:
    """Validate, authorize (an operator of every target district, or an admin) and store a campaign.

    With `approval` (four-eyes, the PUSH_APPROVAL setting) it waits for another operator's `approve`;
    otherwise the worker sends it from its send time.  A given `campaign_id` (32 hex digits) makes a
    retried create a DuplicateKeyError instead of a second campaign.
    """
    _authorize(actor, sorted(set(data.district_ids)))
    doc = await _validated(db, actor, data, now=now, approval=approval, source=source, request_id=request_id,
                           campaign_id=campaign_id)
    await db[COLLECTION].insert_one(doc)
    await audit(db, actor, "push_campaign.create", "push_campaign", doc["_id"], doc["district_ids"], None, doc)
    return Campaign.from_doc(doc)


async def preview(db: AsyncDatabase[Doc], actor: Actor, data: CampaignInput, *,
                  now: datetime) -> tuple[list[Preview], int]:
    """What each locale's readers would get, and how many subscriptions it would reach now; nothing is stored."""
    _authorize(actor, sorted(set(data.district_ids)))
    # a message too large is shown with fits=False rather than refused, so the operator sees which locale
    draft = Campaign.from_doc(await _validated(db, actor, data, now=now, approval=False, source=SOURCE_OPERATOR,
                                               request_id=None, check_size=False))
    previews = []
    for locale in draft.locales:
        title, body, url = draft.localized(locale)
        payload = draft.payload(locale)
        previews.append(Preview(locale, title, body, url, draft.image_for(locale), len(payload), _fits(payload)))
    return previews, await estimate(db, draft.district_ids, draft.topics, draft.locales)


async def estimate(db: AsyncDatabase[Doc], district_ids: Sequence[str], topics: Sequence[str],
                   locales: Sequence[str]) -> int:
    """Subscriptions a campaign would reach now (before quiet hours and the daily cap)."""
    if not district_ids or not topics or not locales:
        return 0
    return await _count(db, SUBSCRIPTIONS, audience_filter(district_ids, topics, locales))


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


async def approve(db: AsyncDatabase[Doc], actor: Actor, campaign_id: str, *, now: datetime) -> Campaign:
    """Four-eyes: another operator of all its districts (or an admin) releases a campaign awaiting approval.

    A send time already passed becomes now, so the TTL still counts from when it is really sent.
    """
    campaign = await for_operator(db, actor, campaign_id)
    p = Problems()
    if campaign.status != AWAITING_APPROVAL:
        p.add("id", NOT_AWAITING)
    elif campaign.created_by is not None and campaign.created_by == actor.account_id:
        p.add("id", OWN_CAMPAIGN)
    p.raise_if_any()
    send_ts = max(campaign.send_at_ts, now.timestamp())
    ttl = campaign.ttl
    if campaign.festival_id:  # approved late, it still must not outlive its festival
        ends = await _festival_end(db, campaign.festival_id)
        if ends is not None:
            ttl = int(min(ttl, ends - send_ts))
        if ttl < MIN_TTL:
            p.add("id", FESTIVAL_ENDED)
            p.raise_if_any()
    result = await db[COLLECTION].update_one(
        {"_id": campaign.id, "status": AWAITING_APPROVAL},
        {"$set": {"status": SENDING, "approved_by": actor.account_id, "send_at_ts": send_ts, "ttl": ttl}})
    if result.modified_count == 1:
        await audit(db, actor, "push_campaign.approve", "push_campaign", campaign.id, list(campaign.district_ids),
                    {"status": AWAITING_APPROVAL}, {"status": SENDING})
    after = await get(db, campaign.id)
    assert after is not None
    return after


async def recent(db: AsyncDatabase[Doc], actor: Actor, *, limit: int = 50) -> list[Campaign]:
    """The newest campaigns of the districts `actor` operates (all of them for an admin)."""
    if not actor.is_admin:
        authz.district_operator(actor, set(actor.district_ids), "districts")
    query: dict[str, Any] = {} if actor.is_admin else {"district_ids": {"$in": sorted(actor.district_ids)}}
    cursor = db[COLLECTION].find(query).sort([("created_ts", -1), ("_id", -1)]).limit(limit)
    found = [Campaign.from_doc(doc) async for doc in cursor]
    # a campaign spanning districts the operator does not run stays hidden, as for_operator would refuse it
    return [c for c in found if actor.is_admin or set(c.district_ids) <= set(actor.district_ids)]


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
