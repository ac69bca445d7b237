"""Sorted lists of merchant keys ("postings"), stored as blocks: one document holds up to BLOCK keys of one
list in one string; lists shorter than SMALL share bucket documents.

Why blocks of one string: nx-27017 serves an index range only on scalar fields, and neosqlite copies every
array element of a document it writes, so a row per (list, merchant) or an array of keys would make the
content load far heavier than the lookups it saves.  A list's first block (its head) is addressed by the
list's name; a later block is found by `(list, last)`: the first block whose last key is after the cursor
holds the next keys, so reading a page of a list is one or two documents whatever the list's length.

Why buckets: most lists are short (a city's rare words, the numbers in English names, an hour a few shops
keep), and a document per list cost the load more than all the rest of the lists.  A short list lives in
the bucket `b|<crc32 of its name mod BUCKETS>` (one string "name<TAB>k1<LF>k2<RS>name<TAB>…"), read in the
same `_id $in` as the heads: a list has a head block, or a bucket entry, or no keys.  (A list that grew
past SMALL by back-office writes has a head; one stored as a head by older code, whatever its length, is read
the same way.)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import zlib
from collections.abc import AsyncIterator, Iterable

from pymongo import InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from server.services.mongo import Doc

BLOCK = 512
# Each document costs nx-27017 ~80 us to write whatever its size: at 5,000 merchants, lists of 16 to 63 keys
# in buckets instead of heads of their own halved the documents (28,000 -> 14,000) and the server's CPU for them
# (2.3 s -> 1.5 s); a bucket stays a few KB (its long lists compressed, see encode).
SMALL = 64
BUCKETS = 8192
SEP = "\n"
COMPRESSED = "~"
COMPRESS_AT = 32
# A block's keys are in `keys`, or compressed (see encode) in `z`; a bucket's lists are in `lists`, or in `zlists`
# when any of them is compressed.  New fields, not "~" in the old ones: code from before compression reads a
# "~..." string as one key and its add/remove would then write the block back holding that key alone, every
# real key lost.  That code finds no `keys` (or `lists`) in such a document and fails with a KeyError instead:
# during a rolling deploy an old process errs on those lists (loudly, nothing written) and loses no key.
KEYS, ZKEYS = "keys", "z"
LISTS, ZLISTS = "lists", "zlists"
NAME_SEP = "\t"
LIST_SEP = "\x1e"
BULK_SLICE = 2000
# a block that grows past this by back-office writes is split in two
SPLIT_AT = 2 * BLOCK
RETRIES = 20
# seconds: the first retry of a write that lost to another writer of the same block waits up to twice this
BACKOFF = 0.002
DUPLICATE_KEY = 11000
# blocks in key order; while a split is half written two blocks end at the same key, and the one being
# split (the lower _id) holds all of the keys
IN_ORDER = [("last", 1), ("_id", 1)]


def encode(keys: list[str]) -> str:
    """Sorted keys as one string.  A list of COMPRESS_AT keys or more is zlib-compressed (its keys joined by
    SEP) and written as base64 after a "~": a city's lists hold ~20 million keys, and nx-27017's cost per
    stored byte (JSON, then SQLite) was a quarter of the postings' write; consecutive keys of a list share most
    of their characters, so it compresses ~4 to 1.  A shorter one is the prefix its keys all share, then what
    follows it in each (and compression would not pay for its header)."""
    if not keys:
        return ""
    if len(keys) >= COMPRESS_AT:
        return COMPRESSED + base64.b64encode(zlib.compress(SEP.join(keys).encode(), 1)).decode("ascii")
    # sorted: what the first and last share, all share
    first, last = keys[0], keys[-1]
    shared = 0
    while shared < min(len(first), len(last)) and first[shared] == last[shared]:
        shared += 1
    return keys[0][:shared] + SEP + SEP.join([k[shared:] for k in keys])


def decode(text: str) -> list[str]:
    if not text:
        return []
    if text[0] == COMPRESSED:  # never a key's first character: keys are slugs
        return _plain(text).split(SEP)
    prefix, _, rest = text.partition(SEP)
    return [prefix + k for k in rest.split(SEP)]


def _plain(text: str) -> str:
    """The keys joined by SEP, whatever their encoding (a compressed text is inflated without splitting it)."""
    if text.startswith(COMPRESSED):
        return zlib.decompress(base64.b64decode(text[1:])).decode()
    return SEP.join(decode(text))


def _field(text: str) -> str:
    """Where a block keeps its encoded keys (see KEYS)."""
    return ZKEYS if text.startswith(COMPRESSED) else KEYS


def keys_text(block: Doc) -> str:
    return str(block[ZKEYS] if ZKEYS in block else block[KEYS])


def _version(block: Doc) -> Doc:
    """The block's keys as read, as a filter: a write guarded by it finds the block only if nobody changed it."""
    text = keys_text(block)
    return {_field(text): text}


def _block(name: str, keys: list[str], *, head: bool, more: bool) -> Doc:
    text = encode(keys)
    return {"_id": name if head else f"{name}|{keys[0]}", "list": name, "last": keys[-1] if keys else "",
            "n": len(keys), _field(text): text, "more": more}


def bucket_id(name: str) -> str:
    return f"b|{zlib.crc32(name.encode()) % BUCKETS}"


def _bucket_lists(doc: Doc) -> dict[str, str]:
    """A bucket's lists: name → its keys string."""
    out: dict[str, str] = {}
    text = _bucket_field_text(doc)
    for part in text.split(LIST_SEP) if text else []:
        name, _, keys = part.partition(NAME_SEP)
        out[name] = keys
    return out


def _bucket_field_text(doc: Doc) -> str:
    return str(doc[ZLISTS] if ZLISTS in doc else doc[LISTS])


def _bucket_text(lists: dict[str, str]) -> str:
    return LIST_SEP.join(f"{name}{NAME_SEP}{keys}" for name, keys in sorted(lists.items()))


def _bucket_body(lists: dict[str, str]) -> Doc:
    """A bucket's lists in the field their encoding asks for (see KEYS)."""
    compressed = any(keys.startswith(COMPRESSED) for keys in lists.values())
    return {ZLISTS if compressed else LISTS: _bucket_text(lists)}


def _is_bucket(doc: Doc) -> bool:
    return LISTS in doc or ZLISTS in doc


def block_docs(lists: dict[str, list[str]]) -> Iterable[Doc]:
    """Each list in order (sorted in place): short ones into their buckets, the others cut into blocks."""
    buckets: dict[str, dict[str, str]] = {}
    for name, keys in lists.items():
        keys.sort()
        if len(keys) < SMALL:
            buckets.setdefault(bucket_id(name), {})[name] = encode(keys)
            continue
        for start in range(0, len(keys), BLOCK):
            yield _block(name, keys[start:start + BLOCK], head=start == 0, more=start + BLOCK < len(keys))
    for bid, small in buckets.items():
        yield {"_id": bid, **_bucket_body(small)}


def keys_of(block: Doc) -> list[str]:
    return decode(keys_text(block))


def _digest(doc: Doc) -> bytes:
    """What a stored document says, whatever its encoding: its keys decoded, not the compressed text (a loader
    built with another zlib, e.g. zlib-ng, compresses the same keys to other bytes, and would rewrite every
    block on each load), and a block stored by older code equal to the same keys stored compressed."""
    fields: list[tuple[str, object]] = []
    for k, v in doc.items():
        # the keys as one plain text, not a list: a load digests every stored block, ~20 million keys in a city
        if k in (KEYS, ZKEYS):
            fields.append((KEYS, _plain(v)))
        elif k in (LISTS, ZLISTS):
            fields.append((LISTS, [(name, _plain(keys)) for name, keys in sorted(_bucket_lists(doc).items())]))
        elif k != "_id":
            # a boolean may read back from nx-27017 as 0/1 (docs/ARCHITECTURE.md): compared as a number
            fields.append((k, int(v) if isinstance(v, bool) else v))
    return hashlib.sha1(repr(sorted(fields)).encode()).digest()


async def replace_all(db: AsyncDatabase[Doc], lists: dict[str, list[str]]) -> int:
    """All lists become the given ones (the content loader's rebuild); returns the documents written.

    Only the blocks and buckets that differ are written, new ones before the old ones go: a reader during
    the rebuild sees each list as before or after, or (a list whose blocks moved) both generations' blocks
    side by side, whose walk by `last` still yields every key the two share; never an empty list.  Writes
    are by _id and idempotent, so two loaders at once each end with the same lists.  A slice is written
    while the next is cut and compressed, so the loader and the database server work at once."""
    # a digest per stored document, not the documents: a city's lists hold ~20 million keys
    stored = {d["_id"]: _digest(d) async for d in db.merchant_postings.find({})}
    blocks = block_docs(lists)
    wanted: set[str] = set()

    def cut() -> tuple[list[tuple[Doc, bool]], bool]:
        """The next slice of documents to write, (document, whether it is new), and whether it is the last.
        CPU (sorting, compressing, digests): run in a thread, so the event loop meanwhile sends the slice
        before it and the server writes it."""
        ops: list[tuple[Doc, bool]] = []
        for doc in blocks:
            wanted.add(doc["_id"])
            was = stored.get(doc["_id"])
            if was is None:
                # an insert costs nx-27017 less than an upsert (no lookup first); one that another loader
                # beat is retried as a replace
                ops.append((doc, True))
            elif was != _digest(doc):
                ops.append((doc, False))
            if len(ops) >= BULK_SLICE:
                return ops, False
        return ops, True

    written = 0
    writing: asyncio.Task[int] | None = None
    try:
        last = False
        while not last:
            ops, last = await asyncio.to_thread(cut)
            if writing is not None:
                written += await writing
            writing = asyncio.create_task(_upsert(db, ops))
        if writing is not None:
            written += await writing
            writing = None
    finally:
        if writing is not None:  # something failed before the slice's write was awaited
            writing.cancel()
            # awaited, so no task is left running behind the error, and its own failure (if it had one) is
            # retrieved rather than reported as "never retrieved": the error raised is the one in flight
            await asyncio.wait([writing])
            if not writing.cancelled():
                writing.exception()
    stale = [i for i in stored if i not in wanted]
    for start in range(0, len(stale), BULK_SLICE):
        await db.merchant_postings.delete_many({"_id": {"$in": stale[start:start + BULK_SLICE]}})
    return written + len(stale)


async def _upsert(db: AsyncDatabase[Doc], docs: list[tuple[Doc, bool]]) -> int:
    """Each document inserted (when new) or replaced, again for those a concurrent loader's insert of the same
    _id beat (duplicate key): the document exists now, so the second try replaces it."""
    total = len(docs)
    for _ in range(RETRIES):
        if not docs:
            return total
        ops: list[InsertOne[Doc] | ReplaceOne[Doc]] = [
            InsertOne(doc) if new else ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc, new in docs]
        try:
            await db.merchant_postings.bulk_write(ops, ordered=False)
            return total
        except BulkWriteError as error:
            failed = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in failed):
                raise
            docs = [(docs[e["index"]][0], False) for e in failed]
    raise RuntimeError("postings blocks kept colliding with another loader's")


async def heads(db: AsyncDatabase[Doc], names: list[str]) -> dict[str, Doc]:
    """Each list's head block, or for a short list a head made of its bucket entry (`more` false); a list
    with neither has no keys.  One read by _id."""
    ids = sorted({*names, *(bucket_id(n) for n in names)})
    found = {d["_id"]: d async for d in db.merchant_postings.find({"_id": {"$in": ids}})}
    out: dict[str, Doc] = {}
    for name in names:
        if name in found:
            out[name] = found[name]
        elif (bucket := found.get(bucket_id(name))) is not None and (keys := _bucket_lists(bucket).get(name)):
            decoded = decode(keys)
            out[name] = {"_id": name, "list": name, _field(keys): keys, "n": len(decoded), "more": False,
                         "last": decoded[-1], "bucket": bucket}
    return out


async def walk(db: AsyncDatabase[Doc], name: str, after: str | None, head: Doc | None) -> AsyncIterator[str]:
    """The list's keys after `after`, in order, from its head (read by `heads`; None: the list is empty)
    on, then a block at a time."""
    last = after or ""
    if head is None:
        return
    for key in keys_of(head):
        if key > last:
            yield key
    if not head["more"]:
        return
    last = max(last, head["last"])
    while True:
        cursor = db.merchant_postings.find({"list": name, "last": {"$gt": last}},
                                           {KEYS: 1, ZKEYS: 1, "last": 1, "more": 1})
        docs = [d async for d in cursor.sort(IN_ORDER).limit(1)]
        if not docs:
            return
        for key in keys_of(docs[0]):
            if key > last:
                yield key
        if not docs[0]["more"]:
            return
        last = docs[0]["last"]


async def length_after(db: AsyncDatabase[Doc], name: str, last: str, cap: int) -> int:
    """Keys of the list after `last`, counted block by block up to `cap` or a little past it."""
    total = 0
    while total < cap:
        cursor = db.merchant_postings.find({"list": name, "last": {"$gt": last}}, {"n": 1, "last": 1, "more": 1})
        docs = [d async for d in cursor.sort(IN_ORDER).limit(2)]
        total += sum(int(d["n"]) for d in docs)
        if len(docs) < 2 or not docs[-1]["more"]:
            break
        last = docs[-1]["last"]
    return total


async def _holder(db: AsyncDatabase[Doc], name: str, key: str) -> Doc | None:
    """The block a key belongs in: the first whose last key is at or after it, else the list's last block."""
    cursor = db.merchant_postings.find({"list": name, "last": {"$gte": key}}).sort([("last", 1)]).limit(1)
    found = [d async for d in cursor]
    if found:
        return found[0]
    cursor = db.merchant_postings.find({"list": name}).sort([("last", -1)]).limit(1)
    found = [d async for d in cursor]
    return found[0] if found else None


async def _rewrite(db: AsyncDatabase[Doc], block: Doc, keys: list[str]) -> bool:
    """Replace a block's keys if nobody changed it since it was read (the keys string is the version).
    A list's head stays, even empty, while the list lives.  A block stored by older code (keys uncompressed,
    whatever their number) is rewritten in today's encoding."""
    guard = {"_id": block["_id"], **_version(block)}
    name, is_head = block["list"], block["_id"] == block["list"]
    if not keys and not is_head:
        return (await db.merchant_postings.delete_one(guard)).deleted_count == 1
    if len(keys) > SPLIT_AT:
        # the second half is written first, so a crash between the two writes leaves every key readable
        # (the block still holds them all); until the first shrinks, both end at the same `last`, and
        # readers take the lower _id (this block: its _id is the list's name or its first key)
        half = len(keys) // 2
        second = _block(name, keys[half:], head=False, more=block["more"])
        try:
            await db.merchant_postings.insert_one(second)
        except DuplicateKeyError:  # another writer is splitting the same block
            return False
        first = _block(name, keys[:half], head=is_head, more=True)
        if (await db.merchant_postings.replace_one(guard, {**first, "_id": block["_id"]})).matched_count == 1:
            return True
        await db.merchant_postings.delete_one({"_id": second["_id"], **_version(second)})
        return False
    body = _block(name, keys, head=is_head, more=block["more"])
    body["_id"] = block["_id"]
    return (await db.merchant_postings.replace_one(guard, body)).matched_count == 1


async def _set_in_bucket(db: AsyncDatabase[Doc], bucket: Doc | None, bid: str, name: str,
                         keys: list[str] | None) -> bool:
    """Change one short list of a bucket (None: drop it), if the bucket is as read."""
    if bucket is None:
        if keys is None:
            return True
        result = await db.merchant_postings.update_one(
            {"_id": bid}, {"$setOnInsert": _bucket_body({name: encode(keys)})}, upsert=True)
        return result.upserted_id is not None
    lists = _bucket_lists(bucket)
    if keys is None:
        lists.pop(name, None)
    else:
        lists[name] = encode(keys)
    as_read = {ZLISTS: bucket[ZLISTS]} if ZLISTS in bucket else {LISTS: bucket[LISTS]}
    result = await db.merchant_postings.replace_one({"_id": bid, **as_read}, _bucket_body(lists))
    return result.matched_count == 1


async def _bucket_of(db: AsyncDatabase[Doc], name: str) -> tuple[Doc | None, list[str] | None, bool]:
    """The list's bucket, its keys there (None: not there), and whether the list has a head block."""
    found = {d["_id"]: d async for d in db.merchant_postings.find({"_id": {"$in": [name, bucket_id(name)]}})}
    bucket = found.get(bucket_id(name))
    small = _bucket_lists(bucket).get(name) if bucket is not None else None
    return bucket, (decode(small) if small is not None else None), name in found


async def _promote(db: AsyncDatabase[Doc], bucket: Doc | None, name: str, seen: list[str],
                   keys: list[str]) -> bool:
    """Move a short list that reached SMALL keys (`seen` in its bucket, plus the one added) to a head
    block.  Only one writer creates the head (False: another did; retry through the head).  Writers that
    read the bucket before the head existed may still change the list there once: their changes are
    carried into the head (which from then on takes every change) before the bucket lets the list go."""
    try:
        await db.merchant_postings.insert_one(_block(name, keys, head=True, more=False))
    except DuplicateKeyError:
        return False
    for attempt in range(RETRIES):
        await _backoff(attempt)
        if await _set_in_bucket(db, bucket, bucket_id(name), name, None):
            return True
        bucket, now, _head = await _bucket_of(db, name)
        current = now or []
        for gone in sorted(set(seen) - set(current)):
            await remove(db, name, gone)
        for came in sorted(set(current) - set(seen)):
            await add(db, name, came)
        seen = current
    raise RuntimeError(f"postings list {name!r} kept changing while leaving its bucket")


async def _backoff(attempt: int) -> None:
    """Before writing again a list that another writer changed since it was read: a random wait, growing with
    the attempts.  Without it N writers of one block retry in step, each round only one of them wins, and with N
    above RETRIES the last give up (seen with 40 adds at once on one block, whatever its encoding); spread out,
    they get through."""
    if attempt:
        await asyncio.sleep(random.uniform(0, BACKOFF * 2 ** min(attempt, 7)))


async def add(db: AsyncDatabase[Doc], name: str, key: str) -> None:
    """A back-office write joins a list: a short list stays in its bucket until it reaches SMALL keys, then
    moves to a head block (written before it leaves the bucket: a reader prefers the head)."""
    for attempt in range(RETRIES):
        await _backoff(attempt)
        bucket, small, has_head = await _bucket_of(db, name)
        if not has_head:
            keys = sorted({*(small or []), key})
            if len(keys) < SMALL:
                if await _set_in_bucket(db, bucket, bucket_id(name), name, keys):
                    return
                continue
            if await _promote(db, bucket, name, small or [], keys):
                return
            continue
        block = await _holder(db, name, key)
        if block is None:
            continue
        keys = keys_of(block)
        if key in keys or await _rewrite(db, block, sorted([*keys, key])):
            return
    raise RuntimeError(f"postings list {name!r} kept changing while adding {key!r}")


async def remove(db: AsyncDatabase[Doc], name: str, key: str) -> None:
    for attempt in range(RETRIES):
        await _backoff(attempt)
        bucket, small, has_head = await _bucket_of(db, name)
        if not has_head:
            if small is None or key not in small:
                return
            rest = [k for k in small if k != key]
            if await _set_in_bucket(db, bucket, bucket_id(name), name, rest or None):
                return
            continue
        cursor = db.merchant_postings.find({"list": name, "last": {"$gte": key}}).sort([("last", 1)]).limit(1)
        found = [d async for d in cursor]
        if not found or key not in (keys := keys_of(found[0])):
            return
        if await _rewrite(db, found[0], [k for k in keys if k != key]):
            return
    raise RuntimeError(f"postings list {name!r} kept changing while removing {key!r}")


async def every_list(db: AsyncDatabase[Doc]) -> dict[str, list[str]]:
    """Every list with its keys, read whole (for checks of the layout, never on a shopper's read)."""
    out: dict[str, list[str]] = {}
    async for doc in db.merchant_postings.find({}):
        if _is_bucket(doc):
            for name, keys in _bucket_lists(doc).items():
                out.setdefault(name, []).extend(decode(keys))
        else:
            out.setdefault(doc["list"], []).extend(keys_of(doc))
    return {name: sorted(keys) for name, keys in out.items()}
