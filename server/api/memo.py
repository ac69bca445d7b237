"""Small results shared by the requests of one process while the tags behind them keep their versions.

On a public-cache miss (server/api/cached_reads.py) the request already knows the current versions of
the tags its answer depends on. Pieces that many answers repeat — category names, a district's current
festivals, a district's merchant count — are kept here under those versions, so a miss costs fewer
MongoDB commands; any write that changes them gives a tag a new version and so a new key. Requests
without versions (POSTs, tokens, Redis down) never use it.

An entry is also forgotten after MAX_AGE_S, the public cache's own longest entry lifetime: a bump that never
reached Redis (Redis failing, then this process restarting before its retry) then leaves an old value in a
memo no longer than it leaves an old answer in Redis, instead of storing it again at every miss.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
MAX_ENTRIES = 2048
ENTITY_MEMO_ENTRIES = 4096  # merchants, pictures, near-me orders: a few MB at most
# cached_reads.MAX_TTL_MS (pinned by tests/api/test_memo.py), counted from when a value is kept: a few ms after the
# reads it was computed from, a margin far below the age itself
MAX_AGE_S = 15 * 60.0
_ABSENT = object()  # an id the computation did not find: kept too, so it is not asked again


class VersionedMemo:
    def __init__(self, max_entries: int = MAX_ENTRIES, *, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[Hashable, tuple[Any, float]] = OrderedDict()
        self.max_entries, self.max_age_s, self.clock = max_entries, max_age_s, clock

    def _kept(self, key: Hashable, now: float) -> tuple[bool, Any]:
        found = self._data.get(key)
        if found is None:
            return False, None
        if now - found[1] > self.max_age_s:
            del self._data[key]
            return False, None
        self._data.move_to_end(key)
        return True, found[0]

    def _keep(self, key: Hashable, value: Any, now: float) -> None:
        self._data[key] = (value, now)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        kept, value = self._kept(key, self.clock())
        if kept:
            return value  # type: ignore[no-any-return]
        computed = await compute()
        self._keep(key, computed, self.clock())
        return computed

    async def get_many(self, keys: dict[K, Hashable], compute: Callable[[list[K]], Awaitable[dict[K, T]]]
                       ) -> dict[K, T]:
        """`get` for many at once: a page's ids not kept are read together in one command, and each is kept under
        its own key (one that `compute` did not find as well, so a missing id is not read again)."""
        now = self.clock()
        found: dict[K, T] = {}
        missing: list[K] = []
        for item, key in keys.items():
            kept, value = self._kept(key, now)
            if not kept:
                missing.append(item)
            elif value is not _ABSENT:
                found[item] = value
        if missing:
            computed = await compute(missing)
            now = self.clock()
            for item in missing:
                self._keep(keys[item], computed.get(item, _ABSENT), now)
                if item in computed:
                    found[item] = computed[item]
        return found


def versioned_key(versions: dict[str, str] | None, tags: tuple[str, ...], *what: Hashable) -> Hashable | None:
    """A memo key for `what` under the current versions of `tags`, or None when they are not all known."""
    if versions is None or "_gen" not in versions or any(t not in versions for t in tags):
        return None
    return (*what, versions["_gen"], *(versions[t] for t in tags))
