"""The campaign form of the back office: its fields read into a `CampaignInput`, the domain's problem keys put
back on those fields, and what the preview says about each phone language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from starlette.datastructures import FormData

from server.domain.festivals.models import Festival
from server.domain.i18n import FALLBACKS, LOCALES, Localized
from server.domain.push.campaign import MIN_TTL, CampaignInput, Preview
from server.push.encode import MAX_PLAINTEXT, MAX_TTL, Urgency
from server.web.admin import security
from server.web.admin.common import Values, form_list, form_str, localized_input, parse_local

URGENCIES: Final = tuple(u.value for u in Urgency)
DEFAULT_TTL_HOURS: Final = 24
MAX_TTL_HOURS: Final = MAX_TTL // 3600
PAYLOAD_LIMIT: Final = MAX_PLAINTEXT
WHEN_NOW, WHEN_LATER = "now", "later"
# the domain speaks GraphQL's field names; the form has its own
FORM_FIELDS: Final = {"districtIds": "district_ids", "sendAt": "send_at", "festivalId": "festival_id",
                      "collapseTopic": "collapse_topic", "ttl": "ttl_hours"}
# a TTL the service always refuses: an unreadable number fails there, together with the other fields' problems
UNREADABLE_TTL: Final = MIN_TTL - 1
# buttons carry the step: compose → preview → send, or back to edit with every value kept
ACTIONS: Final = ("preview", "edit", "send")


def new_values(district_ids: list[str]) -> Values:
    return Values({"district_ids": district_ids, "locales": list(LOCALES), "ttl_hours": DEFAULT_TTL_HOURS,
                   "urgency": Urgency.NORMAL.value, "when": WHEN_NOW})


def action_of(form: FormData) -> str:
    action = form_str(form, "action", 20)
    return action if action in ACTIONS else "preview"  # Enter in a text field submits without a button


def campaign_input(form: FormData) -> tuple[CampaignInput, dict[str, str]]:
    """What the form asks for, and the problems only the form can see (the service finds the rest)."""
    problems: dict[str, str] = {}
    hours_text = form_str(form, "ttl_hours", 20).strip()
    try:
        ttl = int(hours_text) * 3600
    except ValueError:
        problems["ttl_hours"] = "not_a_number" if hours_text else "required"
        ttl = UNREADABLE_TTL
    send_at: datetime | None = None
    if form_str(form, "when", 10) == WHEN_LATER:
        send_at, problem = parse_local(form_str(form, "send_at", 40))
        if problem or send_at is None:
            problems["send_at"] = problem or "required"
    locales = form_list(form, "locales")
    if not locales:  # the service reads "none" as "every locale"; here no box ticked means no choice made
        problems["locales"] = "required"
    data = CampaignInput(
        title=localized_input(form, "title", 1000), body=localized_input(form, "body", 5000),
        url=localized_input(form, "url", 1000), image=localized_input(form, "image", 1000),
        district_ids=form_list(form, "district_ids")[:60], topics=form_list(form, "topics")[:10],
        locales=locales[:10], ttl=ttl, urgency=form_str(form, "urgency", 20),
        collapse_topic=form_str(form, "collapse_topic", 100).strip() or None,
        festival_id=form_str(form, "festival_id", 100) or None, send_at=send_at)
    return data, problems


def form_errors(fields: Mapping[str, str], problems: Mapping[str, str]) -> dict[str, str]:
    """The service's problems on the form's field names; the form's own come first where both speak."""
    return {**{FORM_FIELDS.get(name, name): key for name, key in fields.items()}, **problems}


def hidden_fields(form: FormData) -> list[tuple[str, str]]:
    """Every value the preview carries on to "send" or back to "edit"."""
    return [(k, v) for k, v in form.multi_items()
            if isinstance(v, str) and k not in (security.CSRF_FIELD, "action")][:300]


@dataclass(frozen=True, slots=True)
class LocalePreview:
    """A phone language's preview, with the language its title and text really come from."""
    preview: Preview
    shown_from: str | None  # None: its own language

    @property
    def locale(self) -> str:
        return self.preview.locale


def _source(texts: Localized, locale: str) -> str | None:
    return next((c for c in FALLBACKS[locale] if texts.get(c, "").strip()), None)


def locale_previews(previews: list[Preview], data: CampaignInput) -> list[LocalePreview]:
    out = []
    for preview in sorted(previews, key=lambda p: LOCALES.index(p.locale)):
        sources = [_source(data.title, preview.locale), _source(data.body, preview.locale)]
        fallback = next((s for s in sources if s and s != preview.locale), None)
        out.append(LocalePreview(preview, fallback))
    return out


def effective_ttl(ttl: int, festival: Festival | None, send_at: datetime | None, now: datetime) -> int:
    """The TTL the service will store: cut at the linked festival's end, counted from the send time."""
    if festival is None:
        return ttl
    start = send_at or now
    return max(0, min(ttl, int((festival.ends_at - max(start, now)).total_seconds())))
