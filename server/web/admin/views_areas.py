"""The areas of an operator's districts and their crowd capacities."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain.actor import Actor
from server.domain.districts import service as districts
from server.domain.districts.models import Area
from server.domain.districts.repository import districts_by_ids
from server.domain.errors import Conflict, Invalid
from server.web.admin.common import (
    Values,
    db_of,
    form_str,
    form_version,
    page,
    posted,
    render,
    see_other,
    signed_in,
)


async def _areas_page(request: Request, actor: Actor, context: dict[str, Any], status_code: int = 200) -> Response:
    found = await districts.areas_for_edit(db_of(request), actor)
    wanted = request.query_params.get("district", "")
    groups: dict[str, list[tuple[Area, int]]] = {}
    for area, version in found:
        if not wanted or area.district_id == wanted:
            groups.setdefault(area.district_id, []).append((area, version))
    names = await districts_by_ids(db_of(request), sorted(groups))
    return render(request, "areas.html", {"groups": groups, "district_names": names, "failed": None,
                                          "errors": {}, "conflict": None, **context}, status_code)


@page
async def area_list(request: Request) -> Response:
    return await _areas_page(request, await signed_in(request), {})


@page
async def set_capacity(request: Request) -> Response:
    actor, form = await posted(request)
    area_id = request.path_params["area_id"]
    capacity = form_str(form, "capacity", 40)
    try:
        area = await districts.set_capacity(db_of(request), actor, area_id, capacity, form_version(form))
    except Invalid as exc:
        return await _areas_page(request, actor, {"failed": area_id, "errors": exc.fields,
                                                  "values": Values({"capacity": capacity})}, 422)
    except Conflict as exc:
        return await _areas_page(request, actor, {"failed": area_id, "conflict": exc.current,
                                                  "values": Values({"capacity": capacity})}, 409)
    return see_other(f"/admin/areas?district={area.district_id}&ok=saved")
