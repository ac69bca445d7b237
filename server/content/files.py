"""Reading content files: YAML into records, and the merchant files in parallel processes when they are large.

Parsing YAML is most of a city-sized load's CPU before the first write (PyYAML's constructor is Python
even with libyaml's parser), and a district's file does not depend on another's: with several cores, each
file is read and checked in a process of its own.  Small content (the seed, the tests) is read in this
process, where starting workers would cost more than it saves.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml

from server.content import records
from server.content.validate import ContentError, Record

Doc = dict[str, Any]
Read = tuple[list[records.MerchantDraft], list[Record]]
# libyaml's parser when PyYAML was built with it (~10x faster on a city's worth of merchants)
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Below this many bytes of merchant files (~3,000 merchants) one process reads them all: a worker takes
# about a second to start and import the checks.
PARALLEL_BYTES = 2_000_000


def read_records(path: Path, key: str, root: Path) -> list[Record]:
    name = str(path.relative_to(root))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ContentError(name, "-", "-", f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ContentError(name, "-", key, f"the file must hold a list under {key!r}")
    out = []
    for index, item in enumerate(data[key]):
        label = f"#{index + 1}" + (f" ({item['id']})" if isinstance(item, dict) and "id" in item else "")
        if not isinstance(item, dict):
            raise ContentError(name, label, "-", "must be a mapping")
        out.append(Record(name, label, item))
    return out


@dataclass(frozen=True, slots=True)
class MerchantFile:
    """One district's merchant file and what its records are checked against."""

    path: Path
    district: Doc
    area_ids: frozenset[str]
    category_ids: frozenset[str]
    code: str  # digest of the code that derives documents from records (loader.DERIVING)


def source_hash(code: str, district_id: str, data: Doc) -> str:
    """A merchant document's content hash, from what it is made of: its record, its district (the file's
    name) and the deriving code.  Hashing the record (~1 KB) instead of the derived document (~10 KB, mostly
    search terms) is a tenth of the work, done here in the reading workers."""
    h = hashlib.sha256(f"{code}\x1f{district_id}\x1f".encode())
    h.update(json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode())
    return h.hexdigest()


def read_merchant_file(root: Path, file: MerchantFile) -> Read:
    """The file's merchants, checked, and where each came from (for duplicate-id errors; data left out)."""
    recs = read_records(file.path, "merchants", root)
    area_ids, category_ids = set(file.area_ids), set(file.category_ids)
    drafts = []
    for r in recs:
        draft = records.merchant_draft(r, file.district, area_ids, category_ids)
        draft.content_hash = source_hash(file.code, file.district["_id"], r.data)
        drafts.append(draft)
    return drafts, [Record(r.file, r.label, {}) for r in recs]


Later = Callable[[], list[Record]]


def read_merchant_files(root: Path, files: list[MerchantFile],
                        others: Sequence[tuple[Path, str]] = ()) -> tuple[list[Read], dict[Path, Later]]:
    """Each file's merchants, in the order given; the first file's ContentError is the one raised, as if the
    files were read one after another.  `others` (path, key): record files whose YAML is read beside the
    merchants' (the city's offers are as large as a district's merchants, and were read here alone, one
    core idle); each is returned as a call that gives its records or raises its ContentError, so that the
    caller checks files in the same order as ever."""
    workers = min(len(files) + len(others), os.cpu_count() or 1)
    # decided by the merchants alone: offers add a worker's worth of YAML only where merchants already need two
    # (at 5,000 merchants, counting them started workers that cost more CPU than they saved)
    if workers < 2 or sum(f.path.stat().st_size for f in files) < PARALLEL_BYTES:
        return ([read_merchant_file(root, f) for f in files],
                {p: partial(read_records, p, key, root) for p, key in others})
    # spawn, not fork: the app's process has threads (the event loop's executor, drivers), and a forked
    # child could inherit a lock some thread held
    # a worker lives for this read alone: no cyclic collection in it (content/collector.py)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=gc.disable) as pool:
        # the largest files first, so that no worker is left with a big one at the end
        jobs: list[tuple[int, Callable[[], Future[Any]], Path]] = [
            *((f.path.stat().st_size, partial(pool.submit, read_merchant_file, root, f), f.path) for f in files),
            *((p.stat().st_size, partial(pool.submit, read_records, p, key, root), p) for p, key in others)]
        futures: dict[Path, Future[Any]] = {path: submit() for _, submit, path in
                                            sorted(jobs, key=lambda j: j[0], reverse=True)}
        try:
            merchants: list[Read] = [futures[f.path].result() for f in files]
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return merchants, {p: futures[p].result for p, _ in others}
