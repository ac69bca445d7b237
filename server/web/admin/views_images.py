"""Pictures in the back office: the section on merchant, product and festival pages, uploads and deletes.

The upload is the back office's one multipart form. Its route raises the body limit to a little over the
10 MB a picture may have, so a slightly larger file still reaches the service and gets its own error
next to the field; anything far larger is refused by the limit before it is read.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from server.domain.actor import Actor
from server.domain.errors import Invalid
from server.domain.images import service as images
from server.domain.images.models import MAX_BYTES
from server.web.admin import security
from server.web.admin.common import Values, db_of, localized_input, page, render, see_other, signed_in

UPLOAD_BODY = 2 * MAX_BYTES  # the route's body limit (see above)
EDIT_PAGES = {"merchant": "/admin/merchants/{}", "product": "/admin/products/{}", "festival": "/admin/festivals/{}"}


async def pictures_context(request: Request, actor: Actor, kind: str, owner_id: str | None,
                           errors: dict[str, str] | None = None, values: Values | None = None) -> dict[str, Any]:
    """What `_pictures.html` shows for an owner (nothing for one not created yet)."""
    if owner_id is None:
        return {"pictures": None}
    found = await images.for_owner(db_of(request), actor, kind, owner_id)
    return {"pictures": {"kind": kind, "owner_id": owner_id, "images": found, "problems": errors or {},
                         "typed": values or Values()}}


async def _file_of(form: FormData) -> bytes:
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        return b""
    return await upload.read(MAX_BYTES + 1)  # one byte over is enough to say it is too large


@page
async def upload(request: Request) -> Response:
    actor = await signed_in(request)
    kind, owner_id = request.path_params["kind"], request.path_params["owner_id"]
    form = await request.form(max_files=1, max_fields=10, max_part_size=64 * 1024)
    security.check_session_token(request, form)
    alt = localized_input(form, "alt", 500)
    try:
        await images.upload(db_of(request), actor, kind, owner_id, await _file_of(form), alt)
    except Invalid as exc:
        context = await pictures_context(request, actor, kind, owner_id, exc.fields, Values.of_form(form))
        back = EDIT_PAGES.get(kind, "/admin/{}").format(owner_id)
        return render(request, "images.html", {**context, "back": back}, 422)
    finally:
        await form.close()
    return see_other(EDIT_PAGES[kind].format(owner_id) + "?ok=saved#pictures")


@page
async def delete(request: Request) -> Response:
    actor = await signed_in(request)
    form = await request.form(max_files=0, max_fields=10, max_part_size=1024)
    security.check_session_token(request, form)
    db = db_of(request)
    doc = await images.remove(db, actor, request.path_params["image_id"])
    return see_other(EDIT_PAGES[doc.owner_kind].format(doc.owner_id) + "?ok=saved#pictures")
