"""The GraphQL schema, assembled from each area's query class."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types.execution import ExecutionContext

from graphql import GraphQLError
from server.api.accounts.mutations import AccountMutations
from server.api.coupons.mutations import CouponMutations
from server.api.coupons.queries import CouponQueries
from server.api.crowd.mutations import CrowdMutations
from server.api.crowd.queries import CrowdQueries, CrowdSubscriptions
from server.api.districts.mutations import DistrictMutations
from server.api.districts.queries import DistrictQueries
from server.api.errors import classify
from server.api.executor import EventScopedExecutor
from server.api.festivals.mutations import FestivalMutations
from server.api.festivals.queries import FestivalQueries
from server.api.inbox.queries import InboxQueries
from server.api.inbox.subscriptions import InboxSubscriptions
from server.api.limits import limits_rule
from server.api.merchants.mutations import MerchantMutations
from server.api.merchants.queries import MerchantQueries
from server.api.node import NODE_TYPES, NodeQueries
from server.api.offers.mutations import OfferMutations
from server.api.offers.queries import OfferQueries
from server.api.offers.stats import OfferStatsQueries
from server.api.products.mutations import ProductMutations
from server.api.products.queries import ProductQueries
from server.api.push.campaigns import CampaignMutations, CampaignQueries
from server.api.push.live import CampaignSubscriptions
from server.api.push.mutations import PushMutations
from server.api.push.queries import PushQueries
from server.api.search.queries import SearchQueries
from server.observability.graphql import OperationNameExtension
from server.settings import Settings

log = logging.getLogger("shangquan.graphql")


@strawberry.type
class Query(NodeQueries, DistrictQueries, MerchantQueries, OfferQueries, FestivalQueries, ProductQueries,
            SearchQueries, CrowdQueries, PushQueries, InboxQueries, CampaignQueries, OfferStatsQueries,
            CouponQueries):
    pass


@strawberry.type
class Subscription(CrowdSubscriptions, CampaignSubscriptions, InboxSubscriptions):
    pass


@strawberry.type
class Mutation(OfferMutations, MerchantMutations, FestivalMutations, DistrictMutations, ProductMutations,
               AccountMutations, CrowdMutations, PushMutations, CampaignMutations, CouponMutations):
    pass


class LocaleExtension(SchemaExtension):
    """Tells the client which locale the response was written in."""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        return {"locale": context.locale} if context is not None and hasattr(context, "locale") else {}


class AppSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Client mistakes are answered, not logged as failures; the unexpected ones are
        # logged with the request id the client receives in its masked error.
        context = execution_context.context if execution_context else None
        request_id = getattr(context, "request_id", "-")
        for error in errors:
            if classify(error) is None:
                log.error("unexpected error in request %s at %s", request_id, error.path,
                          exc_info=error.original_error)


def build_schema(settings: Settings) -> strawberry.Schema:
    rule = limits_rule(settings.max_depth, settings.max_aliases, settings.max_cost)
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: AddValidationRules([rule]),
        lambda: ValidationCache(maxsize=512),
        LocaleExtension,
        OperationNameExtension,
    ]
    return AppSchema(query=Query, mutation=Mutation, subscription=Subscription, types=list(NODE_TYPES),
                     extensions=extensions, execution_context_class=EventScopedExecutor)


def schema_sdl() -> str:
    return build_schema(Settings()).as_str() + "\n"
