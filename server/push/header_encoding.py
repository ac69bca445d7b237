"""HPACK for a connection whose requests repeat the same headers: each one's encoding is kept while the
dynamic table does not change.

A fan-out connection sends the same ten or so headers on every stream (method, scheme, authority, the
campaign's TTL and urgency, the VAPID Authorization) plus a path and a length of its own, which are sent
never-indexed (server/push/http2.py) and so leave the table alone.  Once the repeated headers are in the
table, hpack still searched it (linearly) and re-encoded each index on every request, a few percent of a
worker's CPU; the bytes it produced are the same until the table changes, so they are kept.
"""

from __future__ import annotations

from hpack import Encoder


class RepeatingHeadersEncoder(Encoder):
    """An hpack Encoder that reuses the encoding of a header found whole in the table it has not changed."""

    def __init__(self) -> None:
        super().__init__()
        self._known: dict[tuple[bytes, bytes], bytes] = {}
        # what the table looked like when `_known` was filled: every change to it adds a newest entry or
        # evicts one (after an addition, or for a smaller size), so its newest entry and length tell a change
        self._newest: object = None
        self._length = 0

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        if sensitive:  # never indexed: a literal, and the table is left as it is
            return super().add(to_add, sensitive, huffman)
        entries = self.header_table.dynamic_entries
        newest = entries[0] if entries else None
        if newest is not self._newest or len(entries) != self._length:
            self._known.clear()
            self._newest, self._length = newest, len(entries)
        encoded = self._known.get(to_add)
        if encoded is None:
            encoded = super().add(to_add, sensitive, huffman)
            after = entries[0] if entries else None
            if after is newest and len(entries) == self._length:  # found whole: the same bytes next time
                self._known[to_add] = encoded
        return encoded
