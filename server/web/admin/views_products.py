"""The 深圳手信 (Shenzhen gifts) a shop sells."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from server.domain import authz
from server.domain.errors import Conflict, Invalid
from server.domain.merchants import service as merchants
from server.domain.products import service as products
from server.domain.products.models import CATEGORIES as PRODUCT_CATEGORIES
from server.domain.products.models import Product
from server.web.admin.common import (
    Values,
    db_of,
    form_str,
    form_version,
    localized_input,
    localized_values,
    page,
    posted,
    render,
    see_other,
    signed_in,
)
from server.web.admin.money import as_yuan, to_fen, to_yuan
from server.web.admin.views_images import pictures_context


def product_values(product: Product | None, version: int = 0) -> Values:
    if product is None:
        return Values({"category": "food"})
    return Values({
        **localized_values("name", product.name), **localized_values("story", product.story),
        **localized_values("unit", product.unit), "category": product.category,
        "price_min_yuan": to_yuan(product.price_min_fen), "price_max_yuan": to_yuan(product.price_max_fen),
        "version": version,
    })


def product_input(form: FormData) -> products.ProductInput:
    return products.ProductInput(
        name=localized_input(form, "name", 500), story=localized_input(form, "story"),
        unit=localized_input(form, "unit", 200), category=form_str(form, "category", 40),
        price_min_fen=to_fen(form_str(form, "price_min_yuan", 40)),
        price_max_fen=to_fen(form_str(form, "price_max_yuan", 40)),
    )


async def _product_page(request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
    product = context.get("product")
    pictures = await pictures_context(request, await signed_in(request), "product", product.id if product else None)
    return render(request, "product.html", {"categories": PRODUCT_CATEGORIES, "product": None, "conflict": None,
                                            "merchant_id": None, **pictures, **context}, status_code)


@page
async def product_list(request: Request) -> Response:
    actor = await signed_in(request)
    db = db_of(request)
    merchant, _ = await merchants.get_for_edit(db, actor, request.path_params["merchant_id"])
    found = await products.for_merchant(db, actor, merchant.id)
    return render(request, "products.html", {"merchant": merchant, "products": found})


@page
async def set_sold_here(request: Request) -> Response:
    actor, form = await posted(request)
    merchant_id = request.path_params["merchant_id"]
    sold = form_str(form, "sold", 5) == "1"
    await products.set_sold_here(db_of(request), actor, merchant_id, request.path_params["product_id"], sold)
    return see_other(f"/admin/merchants/{merchant_id}/products?ok=saved")


@page
async def new_product_form(request: Request) -> Response:
    actor = await signed_in(request)
    merchant, _ = await merchants.get_for_edit(db_of(request), actor, request.path_params["merchant_id"])
    authz.merchant_only(actor, merchant.id, "products")
    return await _product_page(request, {"merchant_id": merchant.id, "values": product_values(None)})


@page
async def new_product(request: Request) -> Response:
    actor, form = await posted(request)
    merchant_id = request.path_params["merchant_id"]
    try:
        await products.create(db_of(request), actor, merchant_id, product_input(form))
    except Invalid as exc:
        return await _product_page(request, {"merchant_id": merchant_id, "values": Values.of_form(form),
                                       "errors": as_yuan(exc.fields)}, 422)
    return see_other(f"/admin/merchants/{merchant_id}/products?ok=created")


@page
async def product_form(request: Request) -> Response:
    actor = await signed_in(request)
    product, version, owner = await products.get_for_edit(db_of(request), actor, request.path_params["product_id"])
    return await _product_page(request, {"product": product, "merchant_id": owner,
                                   "values": product_values(product, version)})


@page
async def product_save(request: Request) -> Response:
    actor, form = await posted(request)
    db = db_of(request)
    product_id = request.path_params["product_id"]
    try:
        await products.update(db, actor, product_id, product_input(form), form_version(form))
    except Invalid as exc:
        product, _, owner = await products.get_for_edit(db, actor, product_id)
        return await _product_page(request, {"product": product, "merchant_id": owner, "values": Values.of_form(form),
                                       "errors": as_yuan(exc.fields)}, 422)
    except Conflict as exc:
        product, version, owner = await products.get_for_edit(db, actor, product_id)
        values = Values.of_form(form)
        values.set("version", str(version))
        return await _product_page(request, {"product": product, "merchant_id": owner, "values": values,
                                       "conflict": as_yuan(exc.current)}, 409)
    _, _, owner = await products.get_for_edit(db, actor, product_id)
    return see_other(f"/admin/merchants/{owner}/products?ok=saved" if owner else "/admin/?ok=saved")
