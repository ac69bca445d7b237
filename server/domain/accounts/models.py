from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.domain.actor import Actor

ROLES = ("merchant", "operator", "admin")



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
