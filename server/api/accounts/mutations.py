from __future__ import annotations

from datetime import datetime

import strawberry

from server.api.common import AppInfo
from server.api.ids import key_of
from server.api.payloads import FieldError, actor, attempt
from server.domain.accounts import service


@strawberry.type
class InvitationPayload:
    link_token: str | None = strawberry.field(description="Put into /admin/invite/{token}; shown only once.")
    expires_at: datetime | None
    errors: list[FieldError]


@strawberry.type
class ApiTokenPayload:
    id: str | None
    secret: str | None = strawberry.field(description="Use as `Authorization: Bearer …`; shown only once.")
    scopes: list[str]
    errors: list[FieldError]


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Admins invite operators; operators invite merchants of their districts.")
    async def invite_account(self, info: AppInfo, email: str, role: str,
                             merchant_ids: list[strawberry.ID] | None = None,
                             district_ids: list[strawberry.ID] | None = None) -> InvitationPayload:
        who = await actor(info)
        merchants = [key_of(m, "Merchant") for m in (merchant_ids or [])[:50]]
        districts = [key_of(d, "District") for d in (district_ids or [])[:50]]
        result, errors, _ = await attempt(info, service.invite(info.context.db, who, email[:256], role, merchants,
                                                               districts))
        return InvitationPayload(link_token=result.token if result else None,
                                 expires_at=result.expires_at if result else None, errors=errors)

    @strawberry.mutation(description="A personal API token with scopes (offers, profile, products, festivals …).")
    async def create_api_token(self, info: AppInfo, name: str, scopes: list[str]) -> ApiTokenPayload:
        who = await actor(info)
        result, errors, _ = await attempt(info, service.create_token(info.context.db, who, name, scopes[:10]))
        return ApiTokenPayload(id=result.id if result else None, secret=result.secret if result else None,
                               scopes=result.scopes if result else [], errors=errors)

    @strawberry.mutation
    async def revoke_api_token(self, info: AppInfo, id: str) -> list[FieldError]:
        who = await actor(info)
        _, errors, _ = await attempt(info, service.revoke_token(info.context.db, who, id[:40]))
        return errors
