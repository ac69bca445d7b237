"""Who may touch what.  Every service function asks here before it writes."""

from __future__ import annotations

from server.domain.actor import Actor
from server.domain.errors import Forbidden, Unauthenticated

# API-token scopes; a session (scopes None) carries every scope of its role.
SCOPES = ("offers", "profile", "products", "festivals", "districts", "accounts")


def require_scope(actor: Actor, scope: str) -> None:
    if not actor.signed_in:
        raise Unauthenticated()
    if actor.scopes is not None and scope not in actor.scopes:
        raise Forbidden(f"this API token lacks the scope {scope!r}")


def merchant_owner(actor: Actor, merchant_id: str, district_id: str, scope: str) -> None:
    """The merchant itself, an operator of its district, or an admin."""
    require_scope(actor, scope)
    if actor.is_admin:
        return
    if actor.role == "merchant" and merchant_id in actor.merchant_ids:
        return
    if actor.role == "operator" and district_id in actor.district_ids:
        return
    raise Forbidden("this merchant is not yours")


def merchant_only(actor: Actor, merchant_id: str, scope: str) -> None:
    """Offers and products speak for a shop: only the merchant itself (or an admin) writes them."""
    require_scope(actor, scope)
    if actor.is_admin or (actor.role == "merchant" and merchant_id in actor.merchant_ids):
        return
    raise Forbidden("only this merchant may change its offers and products")


def district_operator(actor: Actor, district_ids: list[str] | set[str], scope: str) -> None:
    """An operator of every one of these districts, or an admin."""
    require_scope(actor, scope)
    if actor.is_admin:
        return
    if actor.role == "operator" and district_ids and set(district_ids) <= actor.district_ids:
        return
    raise Forbidden("these districts are not yours")


def admin(actor: Actor, scope: str = "accounts") -> None:
    require_scope(actor, scope)
    if not actor.is_admin:
        raise Forbidden("admins only")
