"""A push campaign as the worker and the operator see it (pure: no storage here).

A campaign document (collection `push_campaigns`) is written whole on create; later changes are plain `$set`s
of strings and numbers (status) and `$inc`s of the counters under `stats`, so no datetime is ever `$set` onto
an existing document (nx-27017 would store it as a string).  Operational times the worker compares are epoch
seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from server.domain.i18n import LOCALES, Localized, pick
from server.domain.push.message import Urgency
from server.domain.push.models import TOPICS

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

# Message keys (server/web/i18n.py MESSAGES) this module raises besides the shared ones.
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


