"""Small results shared by the requests of one process while the tags behind them keep their versions.

On a public-cache miss (server/api/cached_reads.py) the request already knows the current versions of
the tags its answer depends on. Pieces that many answers repeat — category names, a district's current
festivals, a district's merchant count — are kept here under those versions, so a miss costs fewer
MongoDB commands; any write that changes them gives a tag a new version and so a new key. Requests
without versions (POSTs, tokens, Redis down) never use it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
MAX_ENTRIES = 2048


class VersionedMemo:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self.max_entries = max_entries

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        if key in self._data:
            self._data.move_to_end(key)
            value: T = self._data[key]
            return value
        value = await compute()
        self._data[key] = value
        if len(self._data) > self.max_entries:
            self._data.popitem(last=False)
        return value


    async def get_many(self, keys: dict[K, Hashable], compute: Callable[[list[K]], Awaitable[dict[K, T]]]
                       ) -> dict[K, T]:
        """`get` for many at once: the ones not kept are computed together (one read for a page's ids), and
        each is kept under its own key, an id that `compute` did not find included (as absent)."""
        found: dict[K, T] = {}
        missing: list[K] = []
        for item, key in keys.items():
            if key in self._data:
                self._data.move_to_end(key)
                if (value := self._data[key]) is not _ABSENT:
                    found[item] = value
            else:
                missing.append(item)
        if missing:
            computed = await compute(missing)
            for item in missing:
                self._data[keys[item]] = computed.get(item, _ABSENT)
                if item in computed:
                    found[item] = computed[item]
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return found


_ABSENT = object()


def versioned_key(versions: dict[str, str] | None, tags: tuple[str, ...], *what: Hashable) -> Hashable | None:
    """A memo key for `what` under the current versions of `tags`, or None when they are not all known."""
    if versions is None or "_gen" not in versions or any(t not in versions for t in tags):
        return None
    return (*what, versions["_gen"], *(versions[t] for t in tags))
