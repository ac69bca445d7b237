"""Picture writes: who may add one to what, checking and re-encoding it, and where it shows."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.domain import authz, freshness
from server.domain.actor import Actor
from server.domain.audit import repository as audit
from server.domain.errors import Invalid, NotFound
from server.domain.festivals import repository as festivals
from server.domain.forms import Problems
from server.domain.images import artwork, processing, repository
from server.domain.images.models import KEY, MAX_PER_OWNER, OWNER_KINDS, Image, owner_ref
from server.domain.merchants import repository as merchants
from server.domain.products import repository as products
from server.services.mongo import Doc
from server.services.public_cache import changed


@dataclass(frozen=True, slots=True)
class Owner:
    kind: str
    id: str
    district_ids: list[str]  # for the audit log's district filter
    tags: tuple[str, ...]  # the public answers that show its pictures


async def _owner(db: AsyncDatabase[Doc], actor: Actor, kind: str, owner_id: str) -> Owner:
    """The owner, once the actor may change its pictures: whoever may edit the thing itself."""
    if kind == "merchant":
        district_id = await merchants.district_of_merchant(db, owner_id)
        if district_id is None:
            raise NotFound(f"no merchant {owner_id!r}")
        authz.merchant_owner(actor, owner_id, district_id, "profile")
        return Owner(kind, owner_id, [district_id], freshness.of_merchant(owner_id, district_id))
    if kind == "product":
        doc = await products.product_doc(db, owner_id)
        if doc is None:
            raise NotFound(f"no product {owner_id!r}")
        shop = doc.get("owner_merchant_id")
        if shop:  # a shop's own product; shared city specialties are the admins'
            authz.merchant_only(actor, shop, "products")
        else:
            authz.admin(actor, "products")
        district_id = await merchants.district_of_merchant(db, shop) if shop else None
        return Owner(kind, owner_id, [district_id] if district_id else [], (freshness.PRODUCTS, freshness.ANY_WRITE))
    if kind == "festival":
        district_ids = await festivals.districts_of_festival(db, owner_id)
        if district_ids is None:
            raise NotFound(f"no festival {owner_id!r}")
        authz.district_operator(actor, district_ids, "festivals")
        return Owner(kind, owner_id, district_ids, (freshness.FESTIVALS, *freshness.of_districts(district_ids)))
    raise NotFound(f"no kind of owner {kind!r}; one of {', '.join(OWNER_KINDS)}")


async def for_owner(db: AsyncDatabase[Doc], actor: Actor, kind: str, owner_id: str) -> list[Image]:
    """The pictures of something the actor may edit, for its back-office page (read only)."""
    owner = await _owner(db, actor, kind, owner_id)
    ref = owner_ref(owner.kind, owner.id)
    return (await repository.by_owners(db, [ref])).get(ref, [])


async def upload(db: AsyncDatabase[Doc], actor: Actor, kind: str, owner_id: str, data: bytes,
                 alt: dict[str, str]) -> Image:
    """Check, strip and re-encode `data`, store its widths, then the record; on any problem nothing is stored."""
    owner = await _owner(db, actor, kind, owner_id)
    p = Problems()
    alt_texts = p.localized("alt", alt, required=False, max_len=200)
    if not data:
        p.add("image", "required")
    elif await repository.count_of_owner(db, owner_ref(kind, owner_id)) >= MAX_PER_OWNER:
        p.add("image", "image_limit")
    p.raise_if_any()
    try:
        prepared = await asyncio.to_thread(processing.prepare, data)  # CPU work, off the event loop
    except processing.Rejected as exc:
        raise Invalid({"image": exc.key}) from None
    image = Image(uuid.uuid4().hex, prepared.key, kind, owner_id, alt_texts, prepared.width, prepared.height,
                  tuple(sorted(prepared.variants)))
    doc = repository.as_doc(image, {"position": datetime.now(UTC).timestamp(), "origin": "backoffice",
                                    "uploaded_by": actor.account_id, "created_at": datetime.now(UTC)})
    await repository.store_variants(db, prepared.key, prepared.variants)
    ref = owner_ref(kind, owner_id)
    await repository.list_image(db, ref, image.id)  # before the record: a list never misses a record
    try:
        await repository.insert_image(db, doc)
    except BaseException:
        # An error can come after the write took (a timeout, a lost connection): keep the id listed then,
        # or the stored picture would show nowhere and still count toward the owner's limit.
        if await repository.image_doc(db, image.id) is None:
            await repository.unlist_image(db, ref, image.id)
        if not await repository.key_in_use(db, prepared.key):
            await repository.delete_variants(db, prepared.key, image.widths)
        raise
    await audit.record(db, actor, "image.upload", kind, owner_id, owner.district_ids, None, doc)
    await changed(*owner.tags)
    return image


async def remove(db: AsyncDatabase[Doc], actor: Actor, image_id: str) -> Image:
    doc = await repository.image_doc(db, image_id)
    if doc is None:
        raise NotFound(f"no image {image_id!r}")
    image = Image.from_doc(doc)
    owner = await _owner(db, actor, image.owner_kind, image.owner_id)
    await repository.delete_image(db, image_id)
    await repository.unlist_image(db, owner_ref(image.owner_kind, image.owner_id), image_id)  # after: see repository
    if not await repository.key_in_use(db, image.key):  # the same picture may show elsewhere too
        await repository.delete_variants(db, image.key, image.widths)
    await audit.record(db, actor, "image.delete", image.owner_kind, image.owner_id, owner.district_ids, doc, None)
    await changed(*owner.tags)
    return image


async def variant(db: AsyncDatabase[Doc], key: str, width: int) -> bytes | None:
    """The WebP bytes of one width (public); a content picture is drawn and stored on its first request."""
    if not KEY.match(key):
        return None
    found = await repository.read_variant(db, key, width)
    if found is not None:
        return found
    doc = await repository.generated_by_key(db, key)
    if doc is None or width not in doc["widths"]:
        return None
    # only the width asked for: a phone asks for one or two of them, and drawing is cheap to repeat
    data = await asyncio.to_thread(lambda: processing.encode(artwork.draw(doc["generated"]), (width,))[width])
    await repository.store_variants(db, key, {width: data})
    return data
