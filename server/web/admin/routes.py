"""The back office at /admin (server-rendered, works without JavaScript).

Every endpoint asks the domain's service functions, where authorization lives; a POST needs a
CSRF token; no response is cached (`NoStoreMiddleware`); the security headers are the app-wide policy
(server/plumbing/headers.py).
There are no uploads: forms are URL-encoded and a file part is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from server.settings import Settings
from server.web.admin import charts
from server.web.admin import views_account as account
from server.web.admin import views_areas as areas
from server.web.admin import views_audit as audit
from server.web.admin import views_crowd as crowd
from server.web.admin import views_dashboard as dashboard
from server.web.admin import views_festivals as festivals
from server.web.admin import views_images as images
from server.web.admin import views_insights as insights
from server.web.admin import views_merchants as merchants
from server.web.admin import views_offers as offers
from server.web.admin import views_products as products
from server.web.admin import views_push as push
from server.web.admin import views_redeem as redeem
from server.web.admin import views_team as team
from server.web.admin.common import http_error
from server.web.admin.security import NoStoreMiddleware

MAX_BODY = 256 * 1024
CSS = (Path(__file__).parent / "static" / "admin.css").read_bytes()
CAMPAIGNS_JS = (Path(__file__).parent / "static" / "campaigns.js").read_bytes()

GET, POST = ["GET"], ["POST"]


async def stylesheet(request: Request) -> Response:
    return Response(CSS, media_type="text/css; charset=utf-8")


def _script(name: str) -> Callable[[Request], Awaitable[Response]]:
    """A small script of the back office, read once (same origin: the CSP allows no other)."""
    body = (Path(__file__).parent / "static" / name).read_bytes()

    async def serve(request: Request) -> Response:
        return Response(body, media_type="text/javascript; charset=utf-8")

    return serve


async def charts_stylesheet(request: Request) -> Response:
    return Response(charts.stylesheet(), media_type="text/css; charset=utf-8")


async def campaigns_script(request: Request) -> Response:
    return Response(CAMPAIGNS_JS, media_type="text/javascript; charset=utf-8")


async def _to_dashboard(scope: Scope, receive: Receive, send: Send) -> None:
    await RedirectResponse("/admin/", status_code=308)(scope, receive, send)


def back_office_routes() -> list[BaseRoute]:
    return [
        Route("/", account.dashboard, methods=GET),
        Route("/static/admin.css", stylesheet, methods=GET),
        Route("/static/campaigns.js", campaigns_script, methods=GET),
        Route("/static/charts.css", charts_stylesheet, methods=GET),
        Route("/static/dashboard.js", _script("dashboard.js"), methods=GET),
        Route("/static/invite.js", _script("invite.js"), methods=GET),
        Route("/static/redeem.js", _script("redeem.js"), methods=GET),
        Route("/static/vendor/jsQR.js", _script("vendor/jsQR.js"), methods=GET),  # pinned: vendor/README.md
        Route("/login", account.login_form, methods=GET),
        Route("/login", account.login, methods=POST),
        Route("/logout", account.logout, methods=POST),
        Route("/logout-everywhere", account.logout_everywhere, methods=POST),
        Route("/invite/{token}", account.invitation_form, methods=GET),
        Route("/invite/{token}", account.accept_invitation, methods=POST),
        Route("/tokens", account.tokens, methods=GET),
        Route("/tokens", account.create_token, methods=POST),
        Route("/tokens/{token_id}/revoke", account.revoke_token, methods=POST),
        # shops
        Route("/merchants", merchants.merchant_list, methods=GET),
        Route("/merchants/{merchant_id}", merchants.profile_form, methods=GET),
        Route("/merchants/{merchant_id}", merchants.profile_save, methods=POST),
        Route("/districts/{district_id}/merchants/new", merchants.new_merchant_form, methods=GET),
        Route("/districts/{district_id}/merchants/new", merchants.new_merchant, methods=POST),
        Route("/merchants/{merchant_id}/offers", offers.offer_list, methods=GET),
        Route("/merchants/{merchant_id}/insights", insights.merchant_insights, methods=GET),
        Route("/merchants/{merchant_id}/offers/new", offers.new_offer_form, methods=GET),
        Route("/merchants/{merchant_id}/offers/new", offers.new_offer, methods=POST),
        Route("/offers/{offer_id}", offers.offer_form, methods=GET),
        Route("/offers/{offer_id}", offers.offer_save, methods=POST),
        Route("/offers/{offer_id}/publish", offers.publish_offer, methods=POST),
        Route("/offers/{offer_id}/withdraw", offers.withdraw_offer, methods=POST),
        Route("/offers/{offer_id}/decision", festivals.decide_offer, methods=POST),
        Route("/redeem", redeem.redeem_form, methods=GET),
        Route("/redeem", redeem.redeem, methods=POST),
        Route("/merchants/{merchant_id}/products", products.product_list, methods=GET),
        Route("/merchants/{merchant_id}/products/new", products.new_product_form, methods=GET),
        Route("/merchants/{merchant_id}/products/new", products.new_product, methods=POST),
        Route("/merchants/{merchant_id}/products/{product_id}/sold", products.set_sold_here, methods=POST),
        Route("/products/{product_id}", products.product_form, methods=GET),
        Route("/products/{product_id}", products.product_save, methods=POST),
        # pictures of merchants, products and festivals: the one upload, with its own body limit
        Route("/images/{image_id}/delete", images.delete, methods=POST),
        Route("/images/{kind}/{owner_id}", images.upload, methods=POST, max_body_size=images.UPLOAD_BODY),
        # districts
        Route("/festivals", festivals.festival_list, methods=GET),
        Route("/festivals/new", festivals.new_festival_form, methods=GET),
        Route("/festivals/new", festivals.new_festival, methods=POST),
        Route("/festivals/{festival_id}", festivals.festival_form, methods=GET),
        Route("/festivals/{festival_id}", festivals.festival_save, methods=POST),
        Route("/festivals/{festival_id}/offers", festivals.festival_offers, methods=GET),
        Route("/areas", areas.area_list, methods=GET),
        Route("/areas/{area_id}/capacity", areas.set_capacity, methods=POST),
        Route("/invite", team.invite_form, methods=GET),
        Route("/invite", team.invite, methods=POST),
        Route("/audit", audit.audit_log, methods=GET),
        # crowd sensing of a district
        Route("/districts/{district_id}/sensors", crowd.sensor_list, methods=GET),
        Route("/districts/{district_id}/sensors", crowd.register_sensor, methods=POST),
        Route("/districts/{district_id}/sensors/{sensor_id}/revoke", crowd.revoke_sensor, methods=POST),
        Route("/districts/{district_id}/crowd", crowd.crowd_page, methods=GET),
        Route("/districts/{district_id}/card", dashboard.card_fragment, methods=GET),
        Route("/districts/{district_id}/crowd/rules/{area_id}", crowd.save_rule, methods=POST),
        Route("/accounts", audit.account_list, methods=GET),
        # push campaigns: one form action for compose → preview → send (and back to edit)
        Route("/campaigns", push.campaign_list, methods=GET),
        Route("/campaigns/new", push.new_campaign_form, methods=GET),
        Route("/campaigns/new", push.compose, methods=POST),
        Route("/campaigns/{campaign_id}", push.campaign_page, methods=GET),
        Route("/campaigns/{campaign_id}/stats", push.campaign_stats, methods=GET),
        Route("/campaigns/{campaign_id}/approve", push.approve, methods=POST),
        Route("/campaigns/{campaign_id}/cancel", push.cancel, methods=POST),
    ]


def admin_routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/admin", NoStoreMiddleware(_to_dashboard)),
        Mount("/admin", routes=back_office_routes(), middleware=[
            Middleware(NoStoreMiddleware),
            Middleware(ExceptionMiddleware, handlers={HTTPException: http_error}),
            Middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY),
        ]),
    ]
