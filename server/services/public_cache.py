"""The public read cache in Redis: answers stored with the tag versions they were computed under.

One hash holds the version of every tag (`sq:pc:<database>:tags`); one string per cached answer holds the
versions it was stored with, its ETag, when it was stored, its media type and the tags it learnt from its
own data with their versions (the header, first), then the body. A read is one round trip (HMGET of its
tags + GET of its entry, pipelined, together with the other reads this process asks in the same turn of its event
loop); a conditional read
(If-None-Match) asks for the entry's first HEAD_BYTES only (GETRANGE), so a 304 moves a few hundred bytes
out of Redis, not the page; only when the client's ETag is an old one does a second round trip fetch it.
An entry answers only while every version is still the one it was stored with. A write replaces its
tags' versions with fresh random tokens (`bump`), so the next read anywhere misses, and nothing else
needs deleting.

Tags learnt from the data ("shown" tags: the merchants a list shows) cannot be read before the answer is
computed, so their versions are read after it, under a guard: a tag every such write also bumps (the
caller's `guard`, read with the other tags before computing). If the guard still has its version when the
shown tags are read (one HMGET, atomic against a bump's one HSET), no such write happened in between, so
those versions are at least as old as the data; otherwise the answer is not stored. A process remembers
which shown tags a key had (`hint`) and asks for them in the first round trip; a cold one asks in a second.

Why it stays right under eviction and restarts: versions are random tokens, never counters that
could come round again, and the hash carries a generation (`_gen`). If Redis loses the hash
(a restart without persistence, `allkeys-*` eviction), the generation is gone too; the next reader
sets a new one and no entry stored under the old one ever matches again. A tag never bumped has
no version; it can only gain one, never lose it, while the generation lives.

Entries always expire (at the next boundary their own data has, at most 15 minutes), so an
evicting Redis (`maxmemory` with `volatile-lru`, which spares every key without a TTL: the tag
hash, push streams) drops them first. Redis failing is not an outage: the cache steps aside for
a moment and reads go to MongoDB; a bump that failed is retried before this process trusts the
cache again. It steps aside only when Redis is to blame: a call that found no free pooled connection, or that
failed while this process's own event loop was behind (server/services/loop_lag.py), falls back alone, since
under a surge every timer fires late and pausing would send the whole surge to MongoDB at many times the cost.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import os
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from server.services import loop_lag
from server.services.availability import WarnEvery, pool_busy, redis_refused

log = logging.getLogger("shangquan.cache")
PREFIX = "sq:pc:"  # then the database name: deployments (and test apps) sharing a Redis never share answers
GENERATION = "_gen"
# Seconds: a cache slower than this is treated as down, unless the event loop was behind meanwhile (see
# `_failed`). A stopped Redis refuses at once; a hung one is cut by this deadline alone, which every call of the
# cache carries (its client has no socket timeout: server/asgi.py).
CALL_TIMEOUT = 3.0
PAUSE_AFTER_FAILURE = 2.0  # seconds without asking Redis after it failed
SEPARATOR = b"\x1f"
# A conditional read asks for an entry's first bytes only (GETRANGE): its header (versions of at most a
# handful of tags, ETag, time, media type: ~200 bytes; a list's shown merchants add ~45 bytes each) fits
# for a page of 20; a longer one is read whole.
HEAD_BYTES = 1536
SHOWN_SEPARATOR = b" "  # between "tag=version" items of the shown line (tags hold neither)


@dataclass(frozen=True, slots=True)
class Entry:
    etag: str
    stored_ms: int
    content_type: str
    body: bytes
    shown: tuple[tuple[str, str], ...] = ()  # (tag, version) of the tags learnt from its data


@dataclass(frozen=True, slots=True)
class Lookup:
    versions: bytes | None  # None: no generation yet, so nothing may be stored under these versions
    entry: Entry | None  # only an entry stored under exactly `versions`
    by_tag: dict[str, str] | None = None  # the same versions by tag name (a tag never bumped has "")
    shown: tuple[str, ...] = ()  # the entry's shown tags (see above), for the caller's next hint


_Read = tuple[list[Any], bytes | None]  # (HMGET's versions, the entry or its head)


BATCH_MAX = 64  # lookups in one round trip at most: one failure (a dropped connection) fails them all


@dataclass(slots=True)
class _Batch:
    """Lookups that go to Redis together. Each costs a few µs of commands in the pipeline, while a round trip costs
    a pooled connection, a timer, and a write and a read on the socket (the write, on loopback, ~9 % of a hit's
    CPU): at saturation several requests reach their lookup in the same turn of the event loop, and share one.
    Each lookup still reads Redis after its request arrived, so it sees every write acknowledged before."""

    asks: list[tuple[list[str], str, bool, asyncio.Future[_Read]]] = field(default_factory=list)


def _own_copy(exc: Exception) -> Exception:
    """The batch's error for one of its lookups: each raises its own (a shared one would gather every awaiting
    request's frames in its traceback), of the same type and causes, which `_failed` reads."""
    try:
        copied = copy.copy(exc)
    except Exception:  # an exception that cannot be rebuilt from its args
        copied = RedisError(str(exc))
    copied.__cause__, copied.__context__ = exc.__cause__, exc.__context__
    return copied


def _token() -> bytes:
    return os.urandom(8).hex().encode()


class PublicCache:
    def __init__(self, redis: Redis, namespace: str, *, max_entry_bytes: int, enabled: bool = True) -> None:
        self.redis, self.max_entry_bytes, self.enabled = redis, max_entry_bytes, enabled
        self.tags_key, self.entry_prefix = f"{PREFIX}{namespace}:tags", f"{PREFIX}{namespace}:e:"
        self.paused_until = 0.0
        self.pending: set[str] = set()  # tags whose bump did not reach Redis yet
        self.warn = WarnEvery(log, 60)
        self.batch: _Batch | None = None  # the lookups of this turn of the event loop, sent at its end
        self.sending: set[asyncio.Task[None]] = set()
        loop_lag.watch()  # from now on, so that a failure can be told from this process's own backlog

    def _failed(self, exc: BaseException, what: str, started: float) -> None:
        if isinstance(exc, ResponseError):
            # Redis answered, with an error about this one command (a key of another type, a write refused under
            # maxmemory): Redis is up, so only this call goes without the cache
            self.warn.warning("public cache %s refused by Redis (%s)", what, exc)
            return
        if pool_busy(exc):
            # every pooled connection was in use by this process's own requests: busy, not Redis down, so this
            # call falls back alone and the next ones still use the cache
            self.warn.warning("public cache %s found no free Redis connection (this process is busy)", what)
            return
        if not redis_refused(exc) and loop_lag.lagged_since(started):
            # This process was behind during the call, so the failure (any timeout, or a connection dropped
            # mid-stall) says nothing about Redis: this call falls back alone, the next ones still use the
            # cache. A refused connection is Redis down whatever the loop did.
            self.warn.warning("public cache %s failed (%s) with this process's event loop behind", what,
                              type(exc).__name__)
            return
        self.paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
        self.warn.warning("public cache %s failed (%s): reads go to MongoDB", what, type(exc).__name__)

    async def usable(self) -> bool:
        """False while Redis is paused after a failure or a failed bump is still owed."""
        loop_lag.watch()  # a cache made outside a running loop starts watching at its first read
        if not self.enabled or time.monotonic() < self.paused_until:
            return False
        if self.pending:
            return await self.bump(())
        return True

    async def lookup(self, key: str, tags: Iterable[str], *, etags: Iterable[str] = (), guard: str | None = None,
                     hint: Iterable[str] = ()) -> Lookup | None:
        """None when the cache cannot be used now (the caller reads MongoDB).

        With `etags` (the client's If-None-Match), an entry whose ETag is one of them comes back without its
        body (`Entry.body` is empty): the caller answers 304 and Redis sent only the entry's first bytes.
        `guard` is read too (in `by_tag`, not part of the entry's versions); `hint`: shown tags to read at once."""
        tags = list(tags)
        extra = [guard] if guard else []
        hinted = [t for t in hint if t not in tags and t not in extra]
        fields = [GENERATION, *tags, *extra, *hinted]
        wanted = set(etags)
        started = time.monotonic()
        try:
            versions, raw = await self._first_read(fields, self.entry_prefix + key, head_only=bool(wanted))
            if versions[0] is None:
                # First reader after a restart or an eviction: a new generation outdates every old entry.
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self.redis.hsetnx(self.tags_key, GENERATION, _token())
                    versions = await self.redis.hmget(self.tags_key, fields)
                if versions[0] is None:
                    return Lookup(None, None)
                raw = None
            raw = raw or None  # GETRANGE answers b"" for a missing key
            own = 1 + len(tags)
            current = SEPARATOR.join(v or b"" for v in versions[:own])
            entry = _decode(raw, current)
            cut = wanted and raw is not None and raw.count(b"\n") < 5  # a header longer than HEAD_BYTES
            if wanted and entry is not None:
                entry = replace(entry, body=b"")  # the first bytes hold the header, and maybe some of the body
            if cut or (entry is not None and entry.etag not in wanted and wanted):
                # the client's ETag is an old one, so it needs the body after all: the whole entry
                async with asyncio.timeout(CALL_TIMEOUT):
                    whole = await self.redis.get(self.entry_prefix + key)
                entry = _decode(whole if isinstance(whole, bytes) else None, current)
            by_tag = {name: (v or b"").decode() for name, v in zip(fields, versions, strict=True)}
            if entry is not None and entry.shown:
                missing = [t for t, _ in entry.shown if t not in by_tag]
                if missing:  # a process that had not seen this entry yet: a second round trip
                    async with asyncio.timeout(CALL_TIMEOUT):
                        more = await self.redis.hmget(self.tags_key, missing)
                    by_tag.update((t, _text(v)) for t, v in zip(missing, more, strict=True))
                if any(by_tag[t] != v for t, v in entry.shown):
                    entry = None
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._failed(exc, "read", started)
            return None
        shown = tuple(t for t, _ in entry.shown) if entry is not None else ()
        return Lookup(current, entry, by_tag, shown)

    def _first_read(self, fields: list[str], entry_key: str, *, head_only: bool) -> asyncio.Future[_Read]:
        """HMGET of `fields` and GET (GETRANGE of the head) of the entry, sent with the other lookups of this turn
        of the event loop in one pipeline (see `_Batch`)."""
        loop = asyncio.get_running_loop()
        batch = self.batch
        if batch is None or len(batch.asks) >= BATCH_MAX:
            batch = self.batch = _Batch()
            # in a context of its own: the batch belongs to no one request (its request id, its cache binding)
            loop.call_soon(self._send_batch, batch, context=contextvars.Context())
        answer: asyncio.Future[_Read] = loop.create_future()
        batch.asks.append((fields, entry_key, head_only, answer))
        return answer

    def _send_batch(self, batch: _Batch) -> None:
        if self.batch is batch:
            self.batch = None
        task = asyncio.ensure_future(self._run_batch(batch))
        self.sending.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self.sending.discard)

    async def _run_batch(self, batch: _Batch) -> None:
        asks = batch.asks
        try:
            async with asyncio.timeout(CALL_TIMEOUT), self.redis.pipeline(transaction=False) as pipe:
                for fields, entry_key, head_only, _ in asks:
                    pipe.hmget(self.tags_key, fields)
                    if head_only:
                        pipe.getrange(entry_key, 0, HEAD_BYTES - 1)
                    else:
                        pipe.get(entry_key)
                # an error of one command (a key of another type) is that lookup's alone
                answers = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for *_, answer in asks:
                answer.cancel()
            raise
        except Exception as exc:  # each lookup decides what it means (`_failed`)
            for *_, answer in asks:
                if not answer.done():
                    answer.set_exception(_own_copy(exc))
            return
        for i, (*_, answer) in enumerate(asks):
            if answer.done():  # a lookup cancelled meanwhile (its client went away) wants nothing
                continue
            versions, raw = answers[2 * i], answers[2 * i + 1]
            failed = next((a for a in (versions, raw) if isinstance(a, Exception)), None)
            if failed is not None:
                answer.set_exception(failed)
            else:
                answer.set_result((versions, raw))

    async def shown_versions(self, guard: str, guard_version: str, tags: Iterable[str]) -> dict[str, str] | None:
        """The versions of `tags` now, or None when `guard` moved from `guard_version` (see the module's doc)."""
        fields = [guard, *tags]
        started = time.monotonic()
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                versions = await self.redis.hmget(self.tags_key, fields)
        except (RedisError, OSError) as exc:
            self._failed(exc, "read", started)
            return None
        found = {name: _text(v) for name, v in zip(fields, versions, strict=True)}
        return found if found[guard] == guard_version else None

    async def store(self, key: str, versions: bytes, etag: str, content_type: str, body: bytes,
                    ttl_ms: int, shown: dict[str, str] | None = None) -> bool:
        if len(body) > self.max_entry_bytes or ttl_ms <= 0:
            return False
        if any(not t or any(c in t for c in " =\n") for t in shown or {}):
            return False  # a tag that the shown line could not hold: never cached
        learnt = SHOWN_SEPARATOR.join(f"{t}={v}".encode() for t, v in sorted((shown or {}).items()))
        header = b"\n".join((versions, etag.encode(), str(int(time.time() * 1000)).encode(),
                             content_type.encode("latin-1"), learnt))
        started = time.monotonic()
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await self.redis.set(self.entry_prefix + key, header + b"\n" + body, px=ttl_ms)
        except (RedisError, OSError) as exc:  # an OOM refusal under maxmemory lands here too
            self._failed(exc, "store", started)
            return False
        return True

    async def bump(self, tags: Iterable[str]) -> bool:
        """Give each tag a new version: every answer that depends on one of them is outdated."""
        self.pending.update(tags)
        if not self.pending:
            return True
        token = _token()
        started = time.monotonic()
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                await self.redis.hset(self.tags_key, mapping={t: token for t in self.pending})
        except (RedisError, OSError) as exc:
            self._failed(exc, "invalidation", started)
            return False
        self.pending.clear()
        return True


def _text(version: object) -> str:
    """A tag's version as HMGET answers it (bytes; None for a tag never bumped: "")."""
    return version.decode() if isinstance(version, bytes) else ""


def _decode(raw: bytes | None, versions: bytes) -> Entry | None:
    # Six parts: an entry of the earlier five-part format (no shown line) is never read as one; its JSON body
    # holds no raw newline, so it splits in five.
    if raw is None:
        return None
    parts = raw.split(b"\n", 5)
    if len(parts) != 6 or parts[0] != versions:
        return None
    shown: list[tuple[str, str]] = []
    for item in parts[4].split(SHOWN_SEPARATOR) if parts[4] else ():
        tag, equals, version = item.decode().partition("=")
        if not equals:
            return None
        shown.append((tag, version))
    return Entry(parts[1].decode(), int(parts[2]), parts[3].decode("latin-1"), parts[5], tuple(shown))


# The cache that a write in this request (or start-up step) reports its changes to. Set once per
# request by CacheBinding, so application services need no Redis parameter of their own.
_current: ContextVar[PublicCache | None] = ContextVar("shangquan_public_cache", default=None)


def bind(cache: PublicCache | None) -> None:
    _current.set(cache)


async def changed(*tags: str) -> None:
    """Called by application services after a write was acknowledged: outdate what shows it."""
    cache = _current.get()
    if cache is None:
        log.debug("write outside a web request or start-up: no public cache to tell (%s)", tags)
        return
    await cache.bump(tags)
