"""Persisted queries: the PWA's documents in graphql/operations/, addressed by their SHA-256.

A GET that names a document by hash (Apollo's `extensions.persistedQuery`) is
short and cacheable by the service worker and any HTTP cache on the way.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from server.settings import ROOT

OPERATIONS_DIR = ROOT / "graphql" / "operations"


def digest(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


@cache
def allow_list(directory: Path = OPERATIONS_DIR) -> dict[str, str]:
    return {digest(text): text for text in (p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.graphql")))}


def resolve(query: str | None, extensions: dict[str, object] | None) -> tuple[str | None, str | None]:
    """(query to run, error message): the query text a persisted-query request stands for."""
    persisted = (extensions or {}).get("persistedQuery")
    if not isinstance(persisted, dict):
        return query, None
    sha = persisted.get("sha256Hash")
    if persisted.get("version") != 1 or not isinstance(sha, str):
        return None, "persistedQuery needs version 1 and a sha256Hash"
    if query is not None:
        return (query, None) if digest(query) == sha else (None, "sha256Hash does not match the query")
    known = allow_list().get(sha)
    if known is None:
        return None, f"PersistedQueryNotFound: {sha[:16]}… is not one of graphql/operations/"
    return known, None
