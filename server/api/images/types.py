from __future__ import annotations

import strawberry

from server.api.common import AppInfo
from server.domain.i18n import pick
from server.domain.images.models import Image, owner_ref


@strawberry.type(name="Image", description="A picture, served as WebP at a few widths (URLs never change content).")
class ImageType:
    url: str = strawberry.field(description="The 640-px version (or the largest below it): an <img>'s src.")
    srcset: str = strawberry.field(description="Every width, for <img srcset> with a `sizes` that fits the layout.")
    width: int = strawberry.field(description="Of the largest version; with height, the aspect ratio to reserve.")
    height: int
    alt: str = strawberry.field(description="Text for screen readers in the request's locale (may be empty).")

    @staticmethod
    def of(image: Image, locale: str) -> ImageType:
        return ImageType(url=image.src, srcset=image.srcset, width=image.width, height=image.height,
                         alt=pick(image.alt, locale))


async def images_of(info: AppInfo, kind: str, owner_id: str) -> list[ImageType]:
    found = await info.context.loaders.images.load(owner_ref(kind, owner_id))
    return [ImageType.of(image, info.context.locale) for image in found]
