"""Which postings lists (merchants/postings_repository.py) a merchant is on, and reading them in key order.

* `s|<tier>|<term>`: search.  A merchant is on the list of each of its search terms once, at the first tier
  that holds the term: 0 its name, 1 its name or address, 2 anywhere (categories, description).  A
  one-term search reads tier t as one list; a search of several terms reads the first lists of one of them
  and checks the others on the candidates.
* `o|<district>|<open key>`: open now within a district, one list per value of `open_keys` (an hour of the
  week, or an exception date's mark).  A district's open-now page merges the hour's list with the two
  exception marks' lists.

nx-27017 cannot index an array, so the arrays these replace (name_terms, title_terms) or sit beside
(open_keys) were checked row by row along the whole city's or district's key index; a list reads about a
page of keys whatever the city holds.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from pymongo.asynchronous.database import AsyncDatabase

from server.domain.merchants import postings_pending_repository as pending
from server.domain.merchants import postings_repository as store
from server.domain.merchants.derived import open_keys_at
from server.domain.search.terms import tiered_terms
from server.services.mongo import Doc

SEARCH = "s|"
OPEN = "o|"
TIERS = 3
# derived_fields' term arrays, which the postings replace: taken off a document before it is written
TIER_FIELDS = ("name_terms", "title_terms", "search_terms")


def search_list(tier: int, term: str) -> str:
    return f"{SEARCH}{tier}|{term}"


def open_list(district_id: str, open_key: int | str) -> str:
    return f"{OPEN}{district_id}|{open_key}"


def term_tiers(name: dict[str, str], address: dict[str, str], categories: list[str],
               description: dict[str, str]) -> dict[str, int]:
    """Each search term of a merchant and the first tier that holds it (as derived_fields indexes them)."""
    return tiers_of(*tiered_terms([name.values(), address.values(), [*categories, *description.values()]]))


def tiers_of(*by_tier: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for tier, terms in enumerate(by_tier):
        for term in terms:
            out.setdefault(term, tier)
    return out


def tiers_of_doc(doc: Doc) -> dict[str, int]:
    return term_tiers(doc.get("name") or {}, doc.get("address") or {}, list(doc.get("categories") or []),
                      doc.get("description") or {})


def tier_of(doc: Doc, terms: list[str]) -> int:
    """The tier a merchant ranks at for a search: the last tier any of the terms first appears in."""
    tiers = tiers_of_doc(doc)
    return max(tiers.get(t, TIERS) for t in terms)


def holds(doc: Doc, terms: list[str]) -> bool:
    """Whether a merchant matches a search at all (checked on candidates a list did not select)."""
    return not terms or tier_of(doc, terms) < TIERS


def take_tiers(doc: Doc) -> dict[str, int]:
    """derived_fields' name, title and search terms, taken off the document (they live in the postings) as
    each term's first tier."""
    name, title, anywhere = (doc.pop(f, None) or [] for f in TIER_FIELDS)
    return tiers_of(name, title, anywhere)


@dataclass(frozen=True, slots=True)
class Entry:
    """What puts a merchant on lists: nothing unless it is published."""
    key: str
    published: bool
    district_id: str
    tiers: dict[str, int]
    open_keys: tuple[int | str, ...]

    @classmethod
    def of(cls, doc: Doc, tiers: dict[str, int] | None = None) -> Entry:
        return cls(doc["_id"], doc.get("status") == "published", str(doc.get("district_id") or ""),
                   tiers if tiers is not None else tiers_of_doc(doc), tuple(doc.get("open_keys") or ()))

    def lists(self) -> set[str]:
        if not self.published:
            return set()
        return ({search_list(tier, term) for term, tier in self.tiers.items()}
                | {open_list(self.district_id, k) for k in self.open_keys})


Lists = dict[str, list[str]]


@dataclass(slots=True)
class Built:
    """The lists of the content's merchants but `skipped`, to be completed and written by `rebuild`."""
    lists: Lists
    skipped: frozenset[str]


def build(content: list[Doc], content_tiers: dict[str, dict[str, int]], skip: Iterable[str] = (),
          extra: Sequence[Doc] = ()) -> Built:
    """The lists of the content's merchants but those in `skip` (their tiers taken off by take_tiers), and of
    `extra` (read as stored).  CPU only: the content loader runs it in a thread while the server writes."""
    skipped = frozenset(skip) & {d["_id"] for d in content}
    entries = [Entry.of(d, content_tiers[d["_id"]]) for d in content if d["_id"] not in skipped]
    entries.extend(Entry.of(d) for d in extra)
    # keyed by (term, tier) and (district, open key) tuples: a city holds ~20 million (list, merchant)
    # pairs, and naming each list once instead of once per pair halves the build
    by_term: dict[tuple[str, int], list[str]] = {}
    by_hour: dict[tuple[str, int | str], list[str]] = {}
    for entry in entries:
        if not entry.published:
            continue
        for pair in entry.tiers.items():
            by_term.setdefault(pair, []).append(entry.key)
        for open_key in entry.open_keys:
            by_hour.setdefault((entry.district_id, open_key), []).append(entry.key)
    lists = {search_list(tier, term): keys for (term, tier), keys in by_term.items()}
    lists.update((open_list(district, k), keys) for (district, k), keys in by_hour.items())
    return Built(lists, skipped)


async def rebuild(db: AsyncDatabase[Doc], content: list[Doc], content_tiers: dict[str, dict[str, int]],
                  back_office: list[Doc], built: Built | None = None) -> int:
    """Every list from the content's merchants (their tiers taken off by take_tiers) and the back office's;
    returns the postings documents written.  `built`: the content's lists built beforehand (`build`, without
    the back office's merchants of then); used if it left out exactly the content's merchants the back office
    owns now (else, rarely, built again)."""
    owned = {d["_id"] for d in back_office}
    if built is None or built.skipped != owned & {d["_id"] for d in content}:
        built = await asyncio.to_thread(build, content, content_tiers, owned, back_office)
    else:
        for doc in back_office:
            for name in Entry.of(doc).lists():
                built.lists.setdefault(name, []).append(doc["_id"])
    return await store.replace_all(db, built.lists)


async def catch_up(db: AsyncDatabase[Doc], content: list[Doc], content_tiers: dict[str, dict[str, int]],
                   built_from: list[Doc], now: list[Doc]) -> None:
    """After `rebuild` from the back office's merchants as read then (`built_from`): the lists of those the
    back office changed since (`now`: all it owns now) are moved to what they are now, so no edit made during
    the rebuild is lost."""
    before = {d["_id"]: Entry.of(d) for d in built_from}
    after = {d["_id"]: Entry.of(d) for d in now}
    by_id = {d["_id"]: d for d in content}
    now_by_id = {d["_id"]: d for d in now}
    for key in sorted(before.keys() | after.keys()):
        was = before.get(key)
        if was is None and key in by_id:  # taken over by the back office during the load
            was = Entry.of(by_id[key], content_tiers[key])
        if (was.lists() if was else set()) != (after[key].lists() if key in after else set()):
            await apply(db, was, after.get(key), partial(_as_read, now_by_id.get(key)))


async def _as_read(doc: Doc | None) -> Doc | None:
    """The merchant as `now` read it (settling a rebuild reads it no more)."""
    return doc


async def apply(db: AsyncDatabase[Doc], before: Entry | None, after: Entry | None,
                stored: Callable[[], Awaitable[Doc | None]]) -> None:
    """A back-office write: the merchant leaves the lists it is no longer on and joins its new ones.

    Two saves of one merchant may run their applies interleaved, the older one's last: so once its diff is
    written, the merchant is read again (`stored`), and if it is no longer what was applied every list
    either touched is set from it, until a pass ends with it unchanged.  Whichever apply ends last then
    leaves the lists as the stored merchant says; the usual write costs one read by _id more.  A write
    that fails part way marks the merchant (postings_pending_repository), and its next apply or `settle_pending`
    sets the marked lists from the merchant as stored."""
    either = after or before
    if either is None:
        return
    key = either.key
    old = before.lists() if before else set()
    new = after.lists() if after else set()
    marked = await pending.lists_of(db, key)
    touched = old | new | set(marked or [])
    try:
        for name in sorted(old - new):
            await store.remove(db, name, key)
        for name in sorted(new - old):
            await store.add(db, name, key)
        # a marked merchant's lists are set again whatever the stored merchant says
        await _settle(db, key, touched, after if marked is None else _UNSETTLED, stored)
    except Exception:
        await pending.mark(db, key, touched)
        raise
    if marked is not None:
        await pending.clear(db, key, marked)


_UNSETTLED = object()


async def _settle(db: AsyncDatabase[Doc], key: str, touched: set[str], applied: object,
                  stored: Callable[[], Awaitable[Doc | None]]) -> None:
    """Set the merchant's place on the `touched` lists (and on those it is on as stored) from the merchant
    as stored, until a pass ends with it as `applied` (the entry those lists were last written from)."""
    for _ in range(store.RETRIES):
        doc = await stored()
        now = Entry.of(doc) if doc is not None else None
        if now == applied:
            return
        wanted = now.lists() if now else set()
        touched |= wanted
        for name in sorted(touched):
            await (store.add if name in wanted else store.remove)(db, name, key)
        applied = now
    raise RuntimeError(f"merchant {key!r} kept changing while its postings were written")


async def settle_pending(db: AsyncDatabase[Doc], stored: Callable[[str], Awaitable[Doc | None]]) -> int:
    """At start: every merchant a failed write marked gets its marked lists set from it as stored."""
    settled = 0
    for key in [k async for k in pending.keys(db)]:
        marked = await pending.lists_of(db, key)
        if marked is None:
            continue
        await _settle(db, key, set(marked), _UNSETTLED, partial(stored, key))
        await pending.clear(db, key, marked)
        settled += 1
    return settled


async def _next(it: AsyncIterator[str]) -> str | None:
    return await anext(it, None)


async def merged(db: AsyncDatabase[Doc], names: list[str], after: str | None,
                 heads: dict[str, Doc]) -> AsyncIterator[str]:
    """The keys of several lists after `after`, in key order, each once, from the lists' heads (`heads`)."""
    walks = [store.walk(db, name, after, heads.get(name)) for name in names]
    heap: list[tuple[str, int]] = []
    for i, walk in enumerate(walks):
        head = await _next(walk)
        if head is not None:
            heap.append((head, i))
    heapq.heapify(heap)
    last: str | None = None
    while heap:
        key, i = heapq.heappop(heap)
        if key != last:
            yield key
            last = key
        head = await _next(walks[i])
        if head is not None:
            heapq.heappush(heap, (head, i))


async def heads(db: AsyncDatabase[Doc], names: Iterable[str]) -> dict[str, Doc]:
    return await store.heads(db, sorted(set(names)))


async def length(db: AsyncDatabase[Doc], names: list[str], cap: int) -> int:
    """The keys on the lists together, counted up to `cap` (a list is never read past it)."""
    found = await heads(db, names)
    total = sum(int(h["n"]) for h in found.values())
    for head in found.values():
        if total >= cap:
            break
        if head["more"]:
            total += await store.length_after(db, head["list"], head["last"], cap - total)
    return min(total, cap)


def open_lists(district_id: str, at: datetime) -> list[str]:
    return [open_list(district_id, k) for k in open_keys_at(at)]


def lead_term(terms: list[str]) -> str:
    """The term whose lists a search walks: any serves, every match holds them all; a longer one usually
    has fewer merchants."""
    return max(terms, key=lambda t: (len(t), t))


def search_lists(tier: int, terms: list[str]) -> tuple[list[str], bool]:
    """The lists a search tier reads, and whether candidates must be checked for the other terms: one
    term's tier is one list; several terms walk the lead term's lists up to the tier."""
    lead = lead_term(terms)
    if len(terms) == 1:
        return [search_list(tier, lead)], False
    return [search_list(t, lead) for t in range(tier + 1)], True

