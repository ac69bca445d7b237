"""Load content/ into MongoDB: validate everything first, then write only what changed.

Documents from content carry `origin: "content"` and a hash of their fields,
so a second load with unchanged files writes nothing, a changed record is
replaced whole (but for what shoppers changed since: an offer's counters and
the stock its claims took, see KEPT), and a record removed from the files is
removed from the database.  A document edited in the back office changes its origin and is
left alone.

A manifest (collection `content_manifest`) remembers the digest of the files
and of the code that derives documents from them: a start with both unchanged
reads one document instead of parsing and comparing the whole city.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pymongo.asynchronous.database import AsyncDatabase

from server.content import collector, records
from server.content.files import MerchantFile, read_merchant_files, read_records
from server.content.pictures import DRAWING, content_images
from server.content.validate import ContentError, Record
from server.domain.content import repository as content_repository
from server.domain.images import repository as images
from server.domain.merchants import counts, postings
from server.domain.merchants import repository as merchants
from server.domain.merchants.derived import derived_fields
from server.domain.merchants.models import Merchant
from server.domain.offers import repository as offers
from server.domain.offers.models import SHOPPER_FIELDS, reseeded
from server.services.mongo import Doc

# Fields the app changes on a loaded document, by collection, and how a changed record is written over them;
# elsewhere a changed record replaces the document whole.
KEPT: dict[str, tuple[tuple[str, ...], Callable[[Doc, Doc], Doc]]] = {"offers": (SHOPPER_FIELDS, reseeded)}

COLLECTIONS = ("categories", "districts", "areas", "merchants", "festivals", "offers", "products", "images")
# Merchants derived per batch while the previous batch is written: small enough that the server starts
# early, large enough that a batch's round trip is not the cost.
DERIVE_BATCH = 2000
# other documents hashed (pictures' records made) per batch, likewise
HASH_BATCH = 5000
# batches sent before the first of them is answered: the server finds the next one waiting when it is done
# with one, instead of idling while the loader hears back and sends
IN_FLIGHT = 2
_SERVER = Path(__file__).resolve().parent.parent
# The code that turns records into documents: a change to it re-derives everything on the next load.
DERIVING = tuple(_SERVER / p for p in ("content/records.py", "content/loader.py", "content/validate.py",
                                       "content/files.py",
                                       "domain/merchants/derived.py", "domain/merchants/hours.py",
                                       "domain/search/terms.py", "domain/geo.py", "domain/merchants/postings.py",
                                       "domain/merchants/postings_repository.py", "content/pictures.py",
                                       "domain/images/models.py")) + DRAWING


@dataclass(slots=True)
class LoadReport:
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(self.inserted.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def summary(self) -> str:
        parts = []
        for name in COLLECTIONS:
            parts.append(f"{name}: +{self.inserted.get(name, 0)} ~{self.updated.get(name, 0)} "
                         f"-{self.deleted.get(name, 0)} ={self.unchanged.get(name, 0)}")
        return "; ".join(parts)


def _unique(docs: list[Doc], rec: list[Record], kind: str) -> dict[str, Doc]:
    seen: dict[str, Doc] = {}
    for doc, r in zip(docs, rec, strict=True):
        if doc["_id"] in seen:
            raise r.fail("id", f"duplicate {kind} id {doc['_id']!r}")
        seen[doc["_id"]] = doc
    return seen


def _build_all(root: Path, key: str, build: Callable[[Record, int], Doc]) -> tuple[list[Doc], list[Record]]:
    recs = read_records(root / f"{key}.yaml", key, root)
    return [build(r, i) for i, r in enumerate(recs)], recs


@dataclass(slots=True)
class Content:
    """Every document the content folder describes, valid; merchants' derived fields not computed yet."""

    docs: dict[str, list[Doc]]
    drafts: list[records.MerchantDraft]  # drafts[i].doc is docs["merchants"][i]


def parse_content(root: Path) -> dict[str, list[Doc]]:
    """Every document the content folder describes; raises ContentError on the first bad field."""
    content = read_content(root)
    for draft in content.drafts:
        draft.derive()
    return {**content.docs, "images": _images(content.docs)}


def read_content(root: Path) -> Content:
    """Every record checked (ContentError on the first bad field); merchants are left to derive."""
    with collector.paused():
        return _read_content(root)


def _read_content(root: Path) -> Content:
    cats, cat_recs = _build_all(root, "categories", records.category)
    categories = _unique(cats, cat_recs, "category")
    category_ids = set(categories)

    district_recs = read_records(root / "districts.yaml", "districts", root)
    built = [records.district(r, i) for i, r in enumerate(district_recs)]
    districts = _unique([d for d, _ in built], district_recs, "district")
    area_docs: list[Doc] = []
    area_recs: list[Record] = []
    for (_, areas), r in zip(built, district_recs, strict=True):
        area_docs.extend(areas)
        area_recs.extend([r] * len(areas))
    _unique(area_docs, area_recs, "area")

    code = code_digest()
    files: list[MerchantFile] = []
    misnamed: ContentError | None = None
    for path in sorted((root / "merchants").glob("*.yaml")):
        district_id = path.stem
        if district_id not in districts:
            # raised after the files before it were read, as when they were read one by one
            misnamed = ContentError(str(path.relative_to(root)), "-", "-",
                                    f"file name must be a district id; {district_id!r} is not one")
            break
        files.append(MerchantFile(path, districts[district_id], frozenset(
            a["_id"] for a in area_docs if a["district_id"] == district_id), frozenset(category_ids), code))
    drafts: list[records.MerchantDraft] = []
    merchant_recs: list[Record] = []
    offers_file = root / "offers.yaml"
    # the offers' YAML is read in a worker beside the merchants' (if there is one to read); checked below
    read, later = read_merchant_files(root, files, [(offers_file, "offers")] if offers_file.is_file() else [])
    for file_drafts, file_recs in read:
        drafts.extend(file_drafts)
        merchant_recs.extend(file_recs)
    if misnamed is not None:
        raise misnamed
    merchant_docs = [d.doc for d in drafts]
    merchants = _unique(merchant_docs, merchant_recs, "merchant")

    fest_docs, fest_recs = _build_all(root, "festivals", lambda r, _: records.festival(r, set(districts)))
    festivals = _unique(fest_docs, fest_recs, "festival")
    offer_recs = later[offers_file]() if offers_file in later else read_records(offers_file, "offers", root)
    offer_docs = [records.offer(r, merchants, festivals) for r in offer_recs]
    _unique(offer_docs, offer_recs, "offer")
    product_docs, product_recs = _build_all(root, "products", lambda r, _: records.product(r, set(merchants)))
    _unique(product_docs, product_recs, "product")
    # no "images": a picture's record follows from its owner's, and is made while the owners are written
    # (_image_batches), not before the first write
    return Content({
        "categories": cats, "districts": list(districts.values()), "areas": area_docs,
        "merchants": merchant_docs, "festivals": fest_docs, "offers": offer_docs, "products": product_docs,
    }, drafts)


def _images(docs: dict[str, list[Doc]], merchants: slice = slice(None), others: bool = True) -> list[Doc]:
    """The content pictures' records, of these merchants and (`others`) of the products and festivals.  Made
    while the collections before the pictures are written already: must not raise for checked records."""
    return content_images(docs["merchants"][merchants], docs["products"] if others else [],
                          docs["festivals"] if others else [])


def record_digest(doc: Doc) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def code_digest() -> str:
    h = hashlib.sha256()
    for path in DERIVING:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def manifest_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in [*DERIVING, *sorted(root.rglob("*.yaml"))]:
        h.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


async def load_content(db: AsyncDatabase[Doc], root: Path,
                       progress: Callable[[int, int], None] | None = None) -> LoadReport:
    """`progress(done, total)` after each step (parsing, then each collection), for a progress bar."""
    with collector.paused():
        return await _load_content(db, root, progress)


async def _load_content(db: AsyncDatabase[Doc], root: Path, progress: Callable[[int, int], None] | None) -> LoadReport:
    digest = await asyncio.to_thread(manifest_digest, root)
    manifest = await content_repository.manifest(db)
    # a manifest marked by a load that did not finish describes content not wholly written: never "unchanged"
    if manifest is not None and manifest.get("digest") == digest and not manifest.get(content_repository.LOADING):
        if progress:
            progress(len(COLLECTIONS) + 1, len(COLLECTIONS) + 1)
        return LoadReport(unchanged={k: int(v) for k, v in manifest.get("counts", {}).items()})
    # all validation happens before the first write; YAML is CPU work, kept off the event loop
    content = await asyncio.to_thread(read_content, root)
    report = LoadReport()
    if progress:
        progress(1, len(COLLECTIONS) + 1)
    tiers: dict[str, dict[str, int]] = {}  # search tiers live in postings lists, not on merchants (postings.py)
    kept: list[Doc] = []  # the merchants stored as the files say once this load is done
    back_office: list[str] = []  # and those the back office owns
    code = code_digest()
    building: asyncio.Future[postings.Built] | None = None
    made: dict[str, int] = {}  # documents the files give, by collection (for the manifest)
    # Until the manifest is saved at the end, it says that a load began: if this one stops part way (a kill, a
    # database error), the next finds its merchants current but knows the lists, counters and manifest may not be.
    await content_repository.mark_loading(db)
    # From here on documents are made from checked records only (derived fields, pictures' records): that must
    # not raise for a valid record, since some collections are written already.
    try:
        for step, name in enumerate(COLLECTIONS, start=2):
            sync = await _sync(db, name, _in_thread(_batches(content, name, tiers)))
            made[name] = sync.made
            report.inserted[name], report.updated[name] = sync.inserted, sync.updated
            report.deleted[name], report.unchanged[name] = sync.deleted, sync.unchanged
            if name == "merchants":
                kept, back_office = sync.kept, sync.back_office
                # the lists follow the merchants alone: a load that changed none (an offer edited) leaves them
                # be, unless the code that derives them changed.  They are built (CPU) in a thread while the
                # server writes the collections after the merchants.
                if (sync.inserted + sync.updated + sync.deleted or manifest is None or manifest.get("code") != code
                        or manifest.get(content_repository.LOADING)):
                    building = asyncio.ensure_future(asyncio.to_thread(
                        postings.build, content.docs["merchants"], tiers, back_office))
            if progress:
                progress(step, len(COLLECTIONS) + 1)
        owned = await _upgrade_back_office_merchants(db)
        if building is not None:
            await postings.rebuild(db, content.docs["merchants"], tiers, owned, await building)
            now = [d async for d in merchants.back_office_merchant_docs(db)]
            await postings.catch_up(db, content.docs["merchants"], tiers, owned, now)
    finally:
        if building is not None:
            # a thread cannot be cancelled: not left running behind an error; and its own failure, when a later
            # step failed first, is retrieved (not reported as "never retrieved"): the error raised is that step's
            await asyncio.wait([building])
            if not building.cancelled():
                building.exception()
    await counts.rebuild_known(db, kept, back_office)
    await offers.add_missing_until_keys(db)
    await offers.rebuild_by_merchant(db)
    await images.list_uploads(db)  # content pictures need no list (their _id is the owner's): uploads do
    totals = {name: made[name] for name in COLLECTIONS}
    await content_repository.save_manifest(db, digest, totals, code)
    return report


Hashed = list[tuple[Doc, str]]


def _hash(docs: list[Doc]) -> Hashed:
    return [(doc, record_digest(doc)) for doc in docs]


def _batches(content: Content, name: str, tiers: dict[str, dict[str, int]]) -> Iterator[Callable[[], Hashed]]:
    """How to make each batch of `name`'s documents, hashed: merchants derived (their search tiers into
    `tiers`), pictures' records made from their owners', the others as read."""
    if name == "merchants":
        drafts = content.drafts
        for start in range(0, len(drafts), DERIVE_BATCH):
            yield partial(_derive_and_hash, drafts[start:start + DERIVE_BATCH], tiers)
    elif name == "images":
        merchant_docs = content.docs["merchants"]
        for start in range(0, len(merchant_docs), HASH_BATCH):
            yield partial(_hash_made, partial(_images, content.docs, slice(start, start + HASH_BATCH), False))
        yield partial(_hash_made, partial(_images, content.docs, slice(0, 0)))
    else:
        docs = content.docs[name]
        for start in range(0, len(docs), HASH_BATCH):
            yield partial(_hash, docs[start:start + HASH_BATCH])


async def _in_thread(batches: Iterator[Callable[[], Hashed]]) -> AsyncIterator[Hashed]:
    """Each batch made in a thread: the caller writes one batch while the next is made, so the database
    server and the loader work at once (each on its own core)."""
    for make in batches:
        yield await asyncio.to_thread(make)


def _hash_made(make: Callable[[], list[Doc]]) -> Hashed:
    return _hash(make())


def _derive_and_hash(drafts: list[records.MerchantDraft], tiers: dict[str, dict[str, int]]) -> Hashed:
    out = []
    for draft in drafts:
        doc = draft.derive()
        tiers[doc["_id"]] = postings.take_tiers(doc)  # before the write: tiers are not stored on the doc
        out.append((doc, draft.content_hash))
    return out


@dataclass(slots=True)
class _Synced:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    kept: list[Doc] = field(default_factory=list)  # content documents now stored as given
    back_office: list[str] = field(default_factory=list)  # ids the back office owns, left as they are
    made: int = 0  # documents the files give


async def _sync(db: AsyncDatabase[Doc], name: str, batches: AsyncIterator[Hashed]) -> _Synced:
    """Write what changed in `name`, a batch while the next is prepared; delete what the files no longer hold."""
    kept, _ = KEPT.get(name, ((), None))
    existing = await content_repository.sync_states(db, name, kept)
    out = _Synced()
    wanted: set[str] = set()
    replaced: dict[str, tuple[Doc, str]] = {}  # written only while unchanged since read: checked after
    writing: deque[asyncio.Task[set[str]]] = deque()
    taken: set[str] = set()  # inserts another writer beat (a second loader at the same start)
    try:
        async for batch in batches:
            changes: list[tuple[Doc | None, Doc]] = []
            for doc, digest_ in batch:
                wanted.add(doc["_id"])
                current = existing.get(doc["_id"])
                if current is not None and current.get("origin", "content") != "content":
                    out.unchanged += 1  # edited in the back office since: the edit wins
                    out.back_office.append(doc["_id"])
                    continue
                out.kept.append(doc)
                if current is not None and current.get("content_hash") == digest_:
                    out.unchanged += 1
                    continue
                changes.append(planned_write(name, doc, digest_, current))
                if current is None:
                    out.inserted += 1
                else:
                    out.updated += 1
                    replaced[doc["_id"]] = (doc, digest_)
            if len(writing) >= IN_FLIGHT:
                taken |= await writing.popleft()
            writing.append(asyncio.create_task(content_repository.write_changes(db, name, changes, [])))
        while writing:
            taken |= await writing.popleft()
    finally:
        if writing:  # something failed: no write left running behind the error, and theirs retrieved
            for task in writing:
                task.cancel()
            await asyncio.wait(writing)
            for task in writing:
                if not task.cancelled():
                    task.exception()
    # a document a concurrent write won (a back-office edit, another loader's insert) may not be as the files
    # say: counted as it is stored
    lost = taken | await replace_missed(db, name, replaced)
    out.inserted -= len(taken)
    if lost:
        out.kept = [d for d in out.kept if d["_id"] not in lost]
        out.back_office.extend(sorted(lost))
    out.made = len(wanted)
    out.back_office.extend(i for i, d in existing.items()
                           if i not in wanted and d.get("origin", "content") != "content")
    stale = [i for i, d in existing.items() if i not in wanted and d.get("origin", "content") == "content"]
    await content_repository.write_changes(db, name, [], stale)
    out.deleted = len(stale)
    return out


def planned_write(name: str, doc: Doc, digest_: str, current: Doc | None) -> tuple[Doc | None, Doc]:
    """How `doc` is written over the stored state `current`: (None, doc) to insert, else (filter, doc) to replace
    only while the stored document is as read, keeping what shoppers changed (KEPT)."""
    if current is None:
        return None, {**doc, "origin": "content", "content_hash": digest_}
    kept, merge = KEPT.get(name, ((), None))
    written = merge(doc, current) if merge else doc
    return (content_repository.unchanged_since(current, kept),
            {**written, "origin": "content", "content_hash": digest_})


async def replace_missed(db: AsyncDatabase[Doc], name: str, pending: dict[str, tuple[Doc, str]]) -> set[str]:
    """Replaces that found their document changed between the read and the write (a coupon claimed in that
    moment, a back-office edit) wrote nothing: read those again and write them over what is there now.
    Returns the ids left unwritten because a back-office edit won."""
    kept, _ = KEPT.get(name, ((), None))
    lost: set[str] = set()
    while pending:
        states = await content_repository.sync_states(db, name, kept, ids=sorted(pending))
        missed = {i: p for i, p in pending.items() if states.get(i, {}).get("content_hash") != p[1]}
        again = [(i, doc, digest_) for i, (doc, digest_) in missed.items()
                 if states.get(i, {}).get("origin", "content") == "content"]  # a back-office edit wins
        lost.update(i for i in missed if i in states and states[i].get("origin", "content") != "content")
        if not again:
            return lost
        await content_repository.write_changes(
            db, name, [planned_write(name, doc, digest_, states.get(i)) for i, doc, digest_ in again], [])
        pending = {i: (doc, digest_) for i, doc, digest_ in again if i in states}
    return lost


async def _upgrade_back_office_merchants(db: AsyncDatabase[Doc]) -> list[Doc]:
    """Merchants the back office owns get the derived fields of this code too (new indexes need them);
    returned as they are now."""
    out: list[Doc] = []
    async for doc in merchants.back_office_merchant_docs(db):
        merchant = Merchant.from_doc(doc)
        fields = derived_fields(merchant.name, merchant.description, merchant.address, merchant.categories,
                                merchant.location, list(merchant.spans), merchant.exceptions)
        postings.take_tiers(fields)
        await merchants.set_merchant_fields(db, doc["_id"], {**fields, "key": doc["_id"]},
                                            unset=postings.TIER_FIELDS)
        out.append({**doc, **fields})
    return out
