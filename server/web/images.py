"""GET /img/<key>/<width>.webp: a picture's bytes, cached by browsers and CDNs for a year.

The key is a hash of the picture (server/domain/images/models.py), so a URL never changes what it
shows: `immutable` spares even the revalidation, and the ETag answers the odd conditional request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain.images import service as images

FOREVER = "public, max-age=31536000, immutable"


async def image(request: Request) -> Response:
    key, width = request.path_params["key"], request.path_params["width"]
    etag = f'"{key}-{width}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag, "cache-control": FOREVER})
    data = await images.variant(request.app.state.db, key, width)
    if data is None:
        return Response("no such picture", status_code=404, media_type="text/plain; charset=utf-8",
                        headers={"cache-control": "no-store"})
    return Response(data, media_type="image/webp", headers={"etag": etag, "cache-control": FOREVER})


def image_routes() -> list[Route]:
    return [Route("/img/{key}/{width:int}.webp", image, methods=["GET", "HEAD"])]
