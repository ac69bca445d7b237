"""Anonymous persisted-query GETs answered from the public cache before GraphQL runs.

The PWA reads with GETs that name a document of graphql/operations/ by hash. For the
operations below, and only for the variables the PWA sends (a bounded set: ids, a locale, a
few fixed page sizes, first pages), the answer is looked up in Redis under
(document hash, normalized variables, locale) and the versions of the tags it depends on, in
one round trip. A hit is sent as it was stored, with its ETag (a 304 when the phone has it),
so a repeat read costs about what a static file does. Everything else (a POST, a bearer token,
a query text, an unknown hash, variables outside the set, an answer with errors or a null
root, an answer larger than the entry limit) passes through to GraphQL untouched and is never
stored, so only bodies the server produced for exactly that key are ever served from it.

An entry lives until the next boundary its own data has, so it is right to the minute without the whole city's
entries ending together each minute: when it says whether places are open, the next turn of one of those
places (from their hours; a quarter-hour when it lists places by open-now), the next instant at which any
offer or festival begins or ends or a scheduled campaign reaches the inbox (server/domain/boundaries.py: ones
not in the answer yet count too), Shenzhen midnight, and 10 s for answers that carry crowd levels (the live
subscription carries those; the `Age` header says how old a stored answer is). Nothing else ends an entry but
a write (its tags) or the cap: MAX_TTL_MS less a random jitter of up to JITTER_MS (a third of it), so the
entries a warm-up or a content load filled together end over minutes instead of all missing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from pymongo.errors import PyMongoError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.errors import ApiError
from server.api.ids import key_of
from server.domain import boundaries, freshness
from server.domain.geo import on_near_grid, valid_coordinates
from server.domain.i18n import canonical_locale, negotiate
from server.domain.inbox.service import MAX_DISTRICTS
from server.domain.push.models import TOPICS
from server.observability.middleware import STATE_OPERATION
from server.plumbing.persisted import allow_list
from server.services.public_cache import PublicCache, bind

Vars = dict[str, Any]
MAX_VARIABLES_CHARS = 1000
MAX_TTL_MS = 15 * 60_000  # an entry with no boundary near: its tags still end it at the first write
JITTER_MS = 5 * 60_000  # taken off the cap at random, never off a boundary: a warm-up's entries end over 5 min
LIVE_TTL_MS = 10_000
QUARTER_S = 15 * 60  # opening hours turn at quarter-hours (Shenzhen is UTC+8, so local quarters are UTC's)
SHENZHEN = timedelta(hours=8)
# Seconds a read waits for the same read being computed before computing it itself: long, since under a backlog
# the first one is slow only because the loop is, and every read that stops waiting adds a whole execution to it.
# (With MongoDB hung the first one waits for the driver, and so would each of them on its own.)
FOLLOW_TIMEOUT = 20.0
PUSH_TOPICS = frozenset(t.upper() for t in TOPICS)  # GraphQL's PushTopic names
NEAR_RADIUS_M = 5000  # the PWA's "near me" (pwa/screens.js)
BOUNDARY_FIELDS = frozenset({"validFrom", "validUntil", "startsAt", "endsAt"})
OPENING_FIELDS = frozenset({"openNow", "closesAt"})  # what open-now decides, so it turns at quarter-hours


class NotCacheable(Exception):
    """These variables are outside the set that may be cached (GraphQL answers them as usual)."""


def _id(type_name: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise NotCacheable
        try:
            return key_of(value, type_name)
        except ApiError:
            raise NotCacheable from None
    return check


def _one_of(*allowed: object) -> Callable[[object], object]:
    def check(value: object) -> object:
        # `type is` too: JSON's true must not pass for 1, nor 20.0 for 20
        if not any(type(value) is type(a) and value == a for a in allowed):
            raise NotCacheable
        return value
    return check


def _absent(value: object) -> None:
    if value is not None:
        raise NotCacheable


def _search_text(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 32:
        raise NotCacheable
    return value


def _districts(value: object) -> list[str]:
    """The inbox's districts: a few valid ids (the PWA sends all of them, or the ones chosen on the device)."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_DISTRICTS:
        raise NotCacheable
    for item in value:
        _id("District")(item)
    return value


def _topics(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > len(PUSH_TOPICS) or not all(t in PUSH_TOPICS for t in value):
        raise NotCacheable
    return value


def _date(value: object) -> str:
    """A calendar day as the PWA sends it (YYYY-MM-DD); the resolver checks its range."""
    if not isinstance(value, str) or len(value) != 10:
        raise NotCacheable
    try:
        date.fromisoformat(value)
    except ValueError:
        raise NotCacheable from None
    return value


def _categories(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 5 or not all(isinstance(c, str) and len(c) <= 40 for c in value):
        raise NotCacheable
    return value


def _near(value: object) -> Vars:
    """Near me from a point of the grid the PWA rounds to, with its radius: nearby phones share the answer.
    Any other point is a question nobody else asks (never cached)."""
    if not isinstance(value, dict) or set(value) != {"lat", "lng", "radiusMeters"}:
        raise NotCacheable
    lat, lng = value["lat"], value["lng"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lng)) \
            or not valid_coordinates(lat, lng) or not on_near_grid(lat, lng):
        raise NotCacheable
    _one_of(NEAR_RADIUS_M, float(NEAR_RADIUS_M))(value["radiusMeters"])
    return value


def _merchant_filter(value: object) -> Vars | None:
    """District, area, categories, open now, has an offer, near a grid point: yes; free text: no (unbounded)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"districtId", "areaId", "categories", "openNow", "hasActiveOffer",
                                                    "near"}:
        raise NotCacheable
    out: Vars = {}
    checks: dict[str, Callable[[object], object]] = {
        "districtId": _id("District"), "areaId": _id("Area"), "categories": _categories,
        "openNow": _one_of(None, True, False), "hasActiveOffer": _one_of(None, True, False), "near": _near}
    for name, raw in value.items():
        if raw is not None:
            checks[name](raw)
            out[name] = raw
    return out or None


@dataclass(frozen=True, slots=True)
class Policy:
    variables: dict[str, Callable[[object], object]]
    tags: Callable[[Vars], tuple[str, ...]]
    live: bool = False  # carries crowd levels: kept 10 s at most
    defaults: tuple[tuple[str, object], ...] = ()
    # Shows the offers of the merchants it lists: tagged with each of them once computed (shown tags,
    # server/services/public_cache.py), under OFFERS as the guard, so an offer edit outdates only the lists
    # its merchant is on.
    shows_merchants: bool = False


def _district_tags(variables: Vars) -> tuple[str, ...]:
    return (freshness.district(key_of(variables["id"], "District")), freshness.FESTIVALS, freshness.PRODUCTS)


def _inbox_tags(variables: Vars) -> tuple[str, ...]:
    return (freshness.INBOX,)


def _merchant_tags(variables: Vars) -> tuple[str, ...]:
    return (freshness.merchant(key_of(variables["id"], "Merchant")), freshness.PRODUCTS)


def _city_wide(variables: Vars) -> tuple[str, ...]:
    return (freshness.ANY_WRITE,)


def _city_offers(variables: Vars) -> tuple[str, ...]:
    """City-wide lists that show offers whatever merchants they list (home's ending soon, festivals' offers)."""
    return (freshness.ANY_WRITE, freshness.OFFERS)


def _merchant_list(variables: Vars) -> tuple[str, ...]:
    """A list of merchants with their offers: which ones it lists changes with any write but an offer's, unless
    it chooses them by their offers; the offers shown are its merchants' (shown tags)."""
    wanted = variables.get("filter")
    by_offers = isinstance(wanted, dict) and wanted.get("hasActiveOffer") is not None
    return (freshness.ANY_WRITE, freshness.OFFERS) if by_offers else (freshness.ANY_WRITE,)


LOCALE: Callable[[object], object] = lambda v: v  # noqa: E731 - checked with the negotiated locale below
POLICIES: dict[str, Policy] = {
    "DistrictPage": Policy({"id": _id("District"), "first": _one_of(None, 20), "after": _absent, "locale": LOCALE},
                           _district_tags, defaults=(("first", 20),)),
    "DistrictScreen": Policy({"id": _id("District"), "locale": LOCALE}, _district_tags, live=True),
    "MerchantPage": Policy({"id": _id("Merchant"), "locale": LOCALE}, _merchant_tags),
    "Home": Policy({"locale": LOCALE}, _city_offers, live=True),
    "Districts": Policy({"locale": LOCALE}, _city_offers),
    "Festivals": Policy({"when": _one_of(None, "CURRENT", "UPCOMING", "PAST"), "locale": LOCALE}, _city_offers),
    "Products": Policy({"first": _one_of(None, 20, 50), "after": _absent, "filter": _absent, "locale": LOCALE},
                       _city_wide, defaults=(("first", 20),)),
    "MerchantCategories": Policy({"districtId": lambda v: None if v is None else _id("District")(v),
                                  "after": _absent, "locale": LOCALE}, _city_wide),
    "Merchants": Policy({"filter": _merchant_filter, "first": _one_of(None, 20, 50), "after": _absent,
                         "locale": LOCALE}, _merchant_list, defaults=(("first", 20),), shows_merchants=True),
    "Search": Policy({"query": _search_text, "locale": LOCALE}, _city_wide),
    "SearchAll": Policy({"query": _search_text, "first": _one_of(None, 20), "after": _absent, "locale": LOCALE},
                        _merchant_list, defaults=(("first", 20),), shows_merchants=True),
    # Popular times and calmer places draw today's live level: kept 10 s at most, like the crowd screens.
    "AreaPopular": Policy({"id": _id("Area"), "date": _date, "locale": LOCALE}, _city_wide, live=True),
    "DistrictPopular": Policy({"id": _id("District"), "date": _date, "locale": LOCALE}, _city_wide, live=True),
    "CalmerAlternatives": Policy({"id": _id("Area"), "first": _one_of(None, 3), "locale": LOCALE}, _city_wide,
                                 live=True, defaults=(("first", 3),)),
    "Settings": Policy({"locale": LOCALE}, _city_wide),
    # Campaign messages of some districts and topics: the same for every phone that follows those (read state
    # stays on the device), so one entry serves them all until a campaign is stored, approved or cancelled.
    "Inbox": Policy({"districts": _districts, "topics": _topics, "first": _one_of(None, 20), "after": _absent,
                     "locale": LOCALE}, _inbox_tags, defaults=(("first", 20),)),
}


@dataclass(frozen=True, slots=True)
class CacheableRead:
    key: str
    tags: tuple[str, ...]
    live: bool
    by_hours: bool = False  # which places it lists depends on open-now (a filter), whatever fields it shows
    guard: str | None = None  # set when it is tagged with the merchants it shows (Policy.shows_merchants)
    operation: str = ""  # its name, for the access log and metrics (which would otherwise parse the URL again)


@dataclass(frozen=True, slots=True)
class Operations:
    """Persisted document hash → (operation name, policy), for the operations that may be cached."""

    by_hash: dict[str, tuple[str, Policy]]

    @staticmethod
    def load() -> Operations:
        by_hash: dict[str, tuple[str, Policy]] = {}
        for sha, text in allow_list().items():
            for name, policy in POLICIES.items():
                if text.lstrip().startswith(f"query {name}(") or text.lstrip().startswith(f"query {name} "):
                    by_hash[sha] = (name, policy)
        return Operations(by_hash)


def cacheable(operations: Operations, query_string: str, accept_language: str | None,
              accept: str = "") -> CacheableRead | None:
    """The cache key and tags of an anonymous persisted GET, or None when it must not be cached."""
    params = dict(parse_qsl(query_string, keep_blank_values=True))
    if "query" in params or set(params) - {"extensions", "variables", "operationName"}:
        return None
    raw_variables = params.get("variables") or "{}"
    if len(raw_variables) > MAX_VARIABLES_CHARS or len(params.get("extensions", "")) > 200:
        return None
    try:
        sha = json.loads(params.get("extensions", ""))["persistedQuery"]["sha256Hash"]
        variables = json.loads(raw_variables)
    except (ValueError, KeyError, TypeError):
        return None
    known = operations.by_hash.get(sha) if isinstance(sha, str) else None
    if known is None or not isinstance(variables, dict) or set(variables) - set(known[1].variables):
        return None
    policy = known[1]
    try:
        normalized = {k: check(variables.get(k)) for k, check in policy.variables.items()}
    except NotCacheable:
        return None
    for k, default in policy.defaults:
        if normalized.get(k) is None:
            normalized[k] = default
    requested = variables.get("locale")
    if requested is None:
        locale = negotiate(accept_language)
    elif isinstance(requested, str) and len(requested) <= 20 and (found := canonical_locale(requested)):
        locale = found
    else:
        return None  # GraphQL answers the error
    normalized["locale"] = locale
    # Which media type the client asked for (application/json or GraphQL over HTTP's own) is part of the answer
    normalized["~media"] = "graphql-response" if "application/graphql-response+json" in accept else "json"
    if params.get("operationName") not in (None, "", known[0]):
        return None  # GraphQL answers the mismatch
    canonical = json.dumps(normalized, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = hashlib.sha256(f"{sha}\n{canonical}".encode()).hexdigest()[:40]
    wanted = normalized.get("filter")
    by_hours = isinstance(wanted, dict) and wanted.get("openNow") is not None
    return CacheableRead(key, (freshness.EVERYTHING, *policy.tags(variables)), policy.live, by_hours,
                         freshness.OFFERS if policy.shows_merchants else None, known[0])


def shown_merchants(data: object) -> set[str]:
    """The tags of the merchants an answer shows (each node whose global id is a Merchant's)."""
    found: set[str] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            node_id = item.get("id")
            if isinstance(node_id, str):
                with contextlib.suppress(ApiError):
                    found.add(freshness.merchant(key_of(node_id, "Merchant")))
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(item)
    return found


def lifetime_ms(data: object, now: float, live: bool, *, next_change: float = math.inf, by_hours: bool = False,
                jitter_ms: int = 0, open_turns: Iterable[float] | None = None) -> int:
    """Until the next boundary the answer's own data has: `next_change` (the catalogue's next clock change,
    server/domain/boundaries.py), an offer or festival in it ending, when the open-now it shows next changes
    (`open_turns`: each shown merchant's next turn; without them the next quarter-hour), the quarter-hour
    when open-now picks what it lists, Shenzhen midnight; 10 s if live; else the cap less `jitter_ms`."""
    end = min(now + (MAX_TTL_MS - jitter_ms) / 1000, next_change, _next_midnight(now))
    if live:
        end = min(end, now + LIVE_TTL_MS / 1000)
    quarter = math.floor(now / QUARTER_S + 1) * QUARTER_S
    if by_hours:
        end = min(end, quarter)
    turns = list(open_turns or ())
    shows_opening = min(turns) if turns else quarter  # none told: the safe default
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for name, value in item.items():
                if name in OPENING_FIELDS:
                    end = min(end, shows_opening)
                if name in BOUNDARY_FIELDS and isinstance(value, str):
                    try:
                        moment = datetime.fromisoformat(value).timestamp()
                    except ValueError:
                        continue
                    if moment > now:
                        end = min(end, moment)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return int((end - now) * 1000)


def _next_midnight(now: float) -> float:
    """Shenzhen's next midnight: answers that speak of today (a festival's days, holiday hours) turn then."""
    local = datetime.fromtimestamp(now, UTC) + SHENZHEN
    following = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), UTC)
    return (following - SHENZHEN).timestamp()


def worth_storing(body: bytes) -> tuple[bool, object]:
    """(store?, data): only answers without errors whose root fields all found something."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False, None
    data = parsed.get("data") if isinstance(parsed, dict) else None
    if "errors" in parsed or not isinstance(data, dict) or any(v is None for v in data.values()):
        return False, None
    return True, data


def _etags(scope: Scope) -> list[str]:
    """The ETags of the client's If-None-Match (none: an unconditional GET)."""
    wanted = Headers(scope=scope).get("if-none-match", "")
    return [t.strip() for t in wanted.split(",") if t.strip()]


def _matches(scope: Scope, etag: str) -> bool:
    return etag in _etags(scope)


class KnownReads:
    """`cacheable` of the URLs this process was asked lately: phones repeat a few URLs, and a hit then skips
    parsing its query string and variables again (what `cacheable` answers depends on nothing else)."""

    MAX_ENTRIES = 4096
    MAX_URL_BYTES = 4096  # longer query strings are asked again each time: at most 16 MB kept, ~2 MB typically

    def __init__(self, operations: Operations) -> None:
        self.operations = operations
        self.known: OrderedDict[tuple[bytes, bytes, bytes], CacheableRead | None] = OrderedDict()

    def get(self, query_string: bytes, accept_language: bytes, accept: bytes) -> CacheableRead | None:
        asked = (query_string, accept_language, accept)
        if asked in self.known:
            self.known.move_to_end(asked)
            return self.known[asked]
        read = cacheable(self.operations, query_string.decode("latin-1"),
                         accept_language.decode("latin-1") or None, accept.decode("latin-1"))
        if len(query_string) <= self.MAX_URL_BYTES:
            self.known[asked] = read
            if len(self.known) > self.MAX_ENTRIES:
                self.known.popitem(last=False)
        return read


# As the answer GraphQL gives (server/api/view.py): the media type asked for in Accept is part of the key, so an HTTP
# cache on the way must keep the two answers apart too.
HIT_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"public, no-cache"),
               (b"vary", b"Accept, Accept-Language")]


class CachedReads:
    """ASGI: the public cache in front of the GraphQL endpoint (which stays as it was for everything else)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.reads = KnownReads(Operations.load())
        # Misses being computed in this process, by key: the same read arriving meanwhile (all of a district's
        # phones when its entry ends at the minute) waits for the first and is then answered from Redis.
        self.computing: dict[str, asyncio.Event] = {}
        self.finished: OrderedDict[str, float] = OrderedDict()  # key → when its last miss here ended (monotonic)
        # The catalogue's next clock change, by (tags, versions) of the reads that asked: a write that could add
        # one bumps those tags, so a value is good for as long as they keep their versions and it lies ahead.
        self.changes: OrderedDict[tuple[tuple[str, ...], bytes], float] = OrderedDict()
        # The shown tags of the entries this process last saw, by key: read in the lookup's first round trip.
        self.shown: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache: PublicCache | None = getattr(scope["app"].state, "public_cache", None)
        read = None
        if scope["type"] == "http" and scope["method"] == "GET" and cache is not None:
            headers = dict(scope["headers"])
            if b"authorization" not in headers:
                read = self.reads.get(scope["query_string"], headers.get(b"accept-language", b""),
                                      headers.get(b"accept", b""))
        if read is None or cache is None or not await cache.usable():
            await self.app(scope, receive, send)
            return
        # Named here, hit or miss: the access log need not parse the query string again (~5 % of a hit's CPU)
        scope.setdefault("state", {})[STATE_OPERATION] = read.operation
        etags = _etags(scope)
        asked = time.monotonic()
        found = await cache.lookup(read.key, read.tags, etags=etags, guard=read.guard,
                                   hint=self.shown.get(read.key, ()))
        if found is None or found.entry is None:  # a lookup that failed (this process busy) waits its turn too
            if (first := self.computing.get(read.key)) is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FOLLOW_TIMEOUT):
                        await first.wait()
            # Also when this process finished the same read while the lookup was on its way: a busy loop reads
            # Redis's reply late, after the other request stored the answer and stopped being "computing".
            if first is not None or (found is not None and self.finished.get(read.key, -math.inf) >= asked):
                if not await cache.usable():  # a hung or refusing Redis paused the cache meanwhile: MongoDB now
                    await self.app(scope, receive, send)
                    return
                found = await cache.lookup(read.key, read.tags, etags=etags, guard=read.guard,
                                           hint=self.shown.get(read.key, ()))
        if found is not None and found.entry is not None and read.guard is not None:
            self._remember_shown(read.key, found.shown)
        if found is not None and found.entry is not None:
            entry = found.entry
            age = max(0, int(time.time() * 1000) - entry.stored_ms) // 1000
            extra = [(b"etag", entry.etag.encode()), (b"age", str(age).encode()), (b"x-cache", b"hit")]
            if entry.etag in etags:  # the entry came without its body (server/services/public_cache.py)
                await send({"type": "http.response.start", "status": 304, "headers": [*HIT_HEADERS[1:], *extra]})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", entry.content_type.encode("latin-1")), *HIT_HEADERS[1:],
                (b"content-length", str(len(entry.body)).encode()), *extra]})
            await send({"type": "http.response.body", "body": entry.body})
            return
        computing = self.computing.setdefault(read.key, asyncio.Event())
        try:
            await self._miss(scope, receive, send, cache, read, found.versions if found else None,
                             found.by_tag if found else None, lambda: self._computed(read.key, computing))
        finally:
            self._computed(read.key, computing)

    def _computed(self, key: str, computing: asyncio.Event) -> None:
        """The answer is in Redis (or will not be): the reads waiting for it look it up now, whatever the first
        one's client is doing with its copy."""
        if computing.is_set():
            return
        computing.set()
        if self.computing.get(key) is computing:
            del self.computing[key]
        self.finished[key] = time.monotonic()
        self.finished.move_to_end(key)
        if len(self.finished) > KnownReads.MAX_ENTRIES:
            self.finished.popitem(last=False)

    async def _miss(self, scope: Scope, receive: Receive, send: Send, cache: PublicCache, read: CacheableRead,
                    versions: bytes | None, by_tag: dict[str, str] | None, stored: Callable[[], None]) -> None:
        # GraphQL answers in full (no If-None-Match inside), so the body can be stored; the 304 is decided here.
        # The versions let it reuse pieces other misses computed under them (server/api/memo.py).
        open_turns: dict[str, float] = {}  # filled by the merchants' open-now resolvers (server/api/merchants)
        inner = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"if-none-match"],
                 "state": {**scope.get("state", {}), "tag_versions": by_tag, "open_turns": open_turns}}
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        began = time.time()
        await self.app(inner, receive, capture)
        assert start is not None
        body = b"".join(chunks)
        headers = Headers(raw=start.get("headers", []))
        etag = headers.get("etag")
        if start["status"] == 200 and etag and "public" in headers.get("cache-control", "") and versions is not None:
            store, data = worth_storing(body)
            shown: dict[str, str] | None = None
            if store and read.guard is not None:
                # versions read now, valid only if no offer was written since the lookup (the guard)
                shown = await cache.shown_versions(read.guard, (by_tag or {}).get(read.guard, "-"),
                                                   sorted(shown_merchants(data)))
                store = shown is not None
            if store and (next_change := await self._next_change(scope, read, versions, began)) is not None:
                ttl = lifetime_ms(data, began, read.live, next_change=next_change, by_hours=read.by_hours,
                                  jitter_ms=random.randrange(JITTER_MS), open_turns=open_turns.values())
                if shown is not None:
                    shown.pop(read.guard or "", None)
                    self._remember_shown(read.key, tuple(shown))
                await cache.store(read.key, versions, etag, headers.get("content-type", "application/json"), body,
                                  ttl, shown)
        stored()
        raw = [(k, v) for k, v in start.get("headers", []) if k not in (b"x-cache",)] + [(b"x-cache", b"miss")]
        if start["status"] == 200 and etag and _matches(scope, etag):
            await send({"type": "http.response.start", "status": 304,
                        "headers": [(k, v) for k, v in raw if k not in (b"content-length", b"content-type")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    def _remember_shown(self, key: str, shown: tuple[str, ...]) -> None:
        self.shown[key] = shown
        self.shown.move_to_end(key)
        if len(self.shown) > KnownReads.MAX_ENTRIES:
            self.shown.popitem(last=False)

    async def _next_change(self, scope: Scope, read: CacheableRead, versions: bytes, began: float) -> float | None:
        """When the catalogue next changes by the clock after `began` (inf: never); None when MongoDB failed."""
        asked = (read.tags, versions)
        known = self.changes.get(asked)
        if known is not None and known > began:
            return known
        try:
            found = await boundaries.next_change(scope["app"].state.db, datetime.fromtimestamp(began, UTC))
        except PyMongoError:
            return None  # not stored: nothing to say how long it would be right
        value = math.inf if found is None else found
        self.changes[asked] = value
        self.changes.move_to_end(asked)
        if len(self.changes) > KnownReads.MAX_ENTRIES:
            self.changes.popitem(last=False)
        return value


class CacheBinding:
    """Lets the application services of this request outdate cached answers (server/services/public_cache.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: a WebSocket, open for hours, keeps no frame of this layer (server/api/live).
        if scope["type"] in ("http", "websocket"):  # mutations may come over graphql-transport-ws too
            bind(getattr(scope["app"].state, "public_cache", None))
        return self.app(scope, receive, send)


