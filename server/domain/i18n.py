"""Locales and the fallback rule shared by every localized text."""

from __future__ import annotations

from typing import Final

Localized = dict[str, str]

LOCALES: Final = ("zh-CN", "zh-HK", "en")
DEFAULT_LOCALE: Final = "zh-CN"

# A missing zh-HK text falls back to zh-CN before English: a Hong Kong reader
# reads Simplified Chinese more easily than a switch of language.
FALLBACKS: Final[dict[str, tuple[str, ...]]] = {
    "zh-HK": ("zh-HK", "zh-CN", "en"),
    "zh-CN": ("zh-CN", "zh-HK", "en"),
    "en": ("en", "zh-CN", "zh-HK"),
}

_ALIASES: Final = {
    "zh-cn": "zh-CN", "zh-hans": "zh-CN", "zh-sg": "zh-CN", "zh-hans-cn": "zh-CN", "zh": "zh-CN",
    "zh-hk": "zh-HK", "zh-tw": "zh-HK", "zh-mo": "zh-HK", "zh-hant": "zh-HK", "zh-hant-hk": "zh-HK",
    "zh-hant-tw": "zh-HK", "yue": "zh-HK", "en": "en",
}


def canonical_locale(tag: str) -> str | None:
    """The supported locale a language tag means, or None."""
    tag = tag.strip().replace("_", "-").lower()
    if tag in _ALIASES:
        return _ALIASES[tag]
    primary = tag.split("-", 1)[0]
    return "en" if primary == "en" else None


def negotiate(accept_language: str | None) -> str:
    """Pick a locale from an Accept-Language header; unknown or absent → default."""
    if not accept_language:
        return DEFAULT_LOCALE
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        locale = canonical_locale(tag)
        if locale and quality > 0:
            choices.append((-quality, position, locale))
    return min(choices)[2] if choices else DEFAULT_LOCALE


def pick(texts: Localized | None, locale: str) -> str:
    if not texts:
        return ""
    for candidate in FALLBACKS[locale]:
        text = texts.get(candidate)
        if text:
            return text
    return ""
