"""Who is acting.  Its own module because accounts (which make actors), audit (which records them) and authz
(which judges them) all need it, and none of them should import another for it."""

from __future__ import annotations

from dataclasses import dataclass, field


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
