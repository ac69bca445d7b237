from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("merchant", "operator", "admin")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: an account (role and what it is bound to) or nobody."""

    account_id: str | None = None
    email: str = ""
    role: str | None = None
    merchant_ids: frozenset[str] = field(default_factory=frozenset)
    district_ids: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] | None = None  # an API token's scopes; None for a signed-in session

    @property
    def signed_in(self) -> bool:
        return self.account_id is not None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def label(self) -> str:
        return f"{self.role}:{self.email}" if self.signed_in else "anonymous"


ANONYMOUS = Actor()


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    role: str
    merchant_ids: list[str]
    district_ids: list[str]
    status: str
    password_hash: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Account:
        role = str(doc["role"])
        if role not in ROLES:
            raise ValueError(f"account {doc['_id']}: unknown role {role!r}")
        return cls(doc["_id"], doc["email"], role, list(doc.get("merchant_ids") or []),
                   list(doc.get("district_ids") or []), str(doc.get("status", "active")), doc["password_hash"])

    def actor(self, scopes: frozenset[str] | None = None) -> Actor:
        return Actor(self.id, self.email, self.role, frozenset(self.merchant_ids), frozenset(self.district_ids),
                     scopes)
