"""Relay global IDs: opaque base64url of "Type:key"."""

from __future__ import annotations

import base64
import binascii

from server.api.errors import INVALID_ID, NOT_FOUND, ApiError
from server.domain.forms import SLUG


def to_global(type_name: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


def from_global(global_id: str) -> tuple[str, str]:
    if not isinstance(global_id, str) or not 0 < len(global_id) <= 200:
        raise ApiError(INVALID_ID, "ID is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(INVALID_ID, f"{global_id!r} is not a valid ID") from None
    type_name, sep, key = raw.partition(":")
    if not sep or not type_name.isalpha() or not SLUG.match(key):
        raise ApiError(INVALID_ID, f"{global_id!r} is not a valid ID")
    return type_name, key


def key_of(global_id: str, type_name: str) -> str:
    """The key inside an ID that must name a `type_name`."""
    found, key = from_global(global_id)
    if found != type_name:
        raise ApiError(INVALID_ID, f"expected a {type_name} ID, got a {found} ID")
    return key


def not_found(type_name: str, global_id: str) -> ApiError:
    return ApiError(NOT_FOUND, f"no {type_name} with ID {global_id!r}")
