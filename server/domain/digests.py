"""Secrets (API tokens, sensor keys, invitation links) are stored only as their SHA-256."""

from __future__ import annotations

import hashlib


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
