"""The process memo (server/api/memo.py): bounded by count and by age, many ids read in one computation."""

from __future__ import annotations

from server.api.cached_reads import MAX_TTL_MS
from server.api.memo import MAX_AGE_S, VersionedMemo


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_an_entry_is_forgotten_after_the_public_caches_longest_lifetime() -> None:
    """A bump lost on its way to Redis leaves an old value in the memo no longer than an old answer in Redis."""
    assert MAX_AGE_S == MAX_TTL_MS / 1000
    clock, computed = Clock(), []

    async def compute() -> int:
        computed.append(clock.now)
        return len(computed)

    memo = VersionedMemo(clock=clock)
    assert await memo.get("k", compute) == 1
    clock.now = MAX_AGE_S - 1
    assert await memo.get("k", compute) == 1
    clock.now = MAX_AGE_S + 1
    assert await memo.get("k", compute) == 2
    assert computed == [0.0, MAX_AGE_S + 1]


async def test_many_ids_are_read_together_and_a_missing_one_is_not_read_again() -> None:
    clock, asked = Clock(), []

    async def fetch(ids: list[str]) -> dict[str, str]:
        asked.append(ids)
        return {i: i.upper() for i in ids if i != "gone"}

    memo = VersionedMemo(max_entries=3, clock=clock)
    assert await memo.get_many({i: ("v1", i) for i in ("a", "b", "gone")}, fetch) == {"a": "A", "b": "B"}
    assert await memo.get_many({i: ("v1", i) for i in ("a", "gone")}, fetch) == {"a": "A"}
    assert await memo.get_many({i: ("v2", i) for i in ("a", "c")}, fetch) == {"a": "A", "c": "C"}  # new versions
    assert asked == [["a", "b", "gone"], ["a", "c"]]
    # at most three kept: the oldest (v1's "b") went first
    assert await memo.get_many({"b": ("v1", "b")}, fetch) == {"b": "B"}
    assert asked[-1] == ["b"]
