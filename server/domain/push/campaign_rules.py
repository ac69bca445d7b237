"""What a campaign must satisfy before it is stored: the checks of the compose form and the GraphQL input.

Pure: what needs the database (the districts that exist, the festival's end) is looked up by the service and
passed in.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from server.domain.forms import Problems
from server.domain.i18n import LOCALES, Localized
from server.domain.push.campaign import (
    AWAITING_APPROVAL,
    FESTIVAL_ENDED,
    IMAGE_INVALID,
    MAX_BODY,
    MAX_DISTRICTS,
    MAX_SCHEDULE_AHEAD,
    MAX_TITLE,
    MAX_URL,
    MIN_TTL,
    PAYLOAD_TOO_LARGE,
    SEND_AT_PAST,
    SEND_AT_TOO_FAR,
    SENDING,
    STAGE_NEW,
    STATS,
    TOPIC_INVALID,
    URL_INVALID,
    Campaign,
    CampaignInput,
)
from server.domain.push.message import MAX_TTL, EncodeError, PayloadTooLarge, Urgency, check_payload, check_topic
from server.domain.push.models import TOPICS


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



def fits(payload: bytes) -> bool:
    try:
        check_payload(payload)
    except PayloadTooLarge:
        return False
    return True



def _check_ttl(p: Problems, data: CampaignInput, send_ts: float, festival_ends: float | None) -> int:
    """The TTL counts from the send time and is clipped to the end of the linked festival."""
    ttl = p.integer("ttl", data.ttl, MIN_TTL, MAX_TTL, required=True) or MIN_TTL
    if data.festival_id:
        if festival_ends is None:
            p.add("festivalId", "not_found")
            return ttl
        left = int(festival_ends - send_ts)
        if left < MIN_TTL:
            p.add("festivalId", FESTIVAL_ENDED)
            return ttl
        ttl = min(ttl, left)
    return ttl


def validated(data: CampaignInput, *, account_id: str | None, now: datetime, approval: bool, source: str,
              request_id: str | None, known_districts: int, festival_ends: float | None,
              campaign_id: str | None = None, check_size: bool = True) -> dict[str, Any]:
    """The campaign document `data` describes, or InvalidInput with every problem; shared by create and preview.

    `known_districts` is how many of `data.district_ids` exist; `festival_ends` the linked festival's end
    (epoch seconds; None when there is no such festival).
    """
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
    elif known_districts != len(districts):
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
    ttl = _check_ttl(p, data, send_ts, festival_ends)
    doc: dict[str, Any] = {
        "_id": campaign_id or uuid.uuid4().hex, "title": title, "body": body, "url": url, "image": image,
        "district_ids": districts, "topics": topics, "locales": locales, "ttl": ttl, "urgency": data.urgency,
        "collapse_topic": collapse, "festival_id": data.festival_id or None,
        "status": AWAITING_APPROVAL if approval else SENDING, "stage": STAGE_NEW,
        "created_at": now, "created_ts": now.timestamp(), "send_at_ts": send_ts,
        "created_by": account_id, "source": source, "request_id": request_id,
        "stats": dict.fromkeys(STATS, 0),
    }
    if not p.fields and check_size:
        draft = Campaign.from_doc(doc)
        for locale in LOCALES:  # every reader's message must fit one push record
            if not fits(draft.payload(locale)):
                p.add(f"body.{locale}" if locale in body else "body.zh-CN", PAYLOAD_TOO_LARGE)
    p.raise_if_any()
    return doc
