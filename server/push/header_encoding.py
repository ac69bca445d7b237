"""HPACK for a connection whose requests repeat the same headers: each one's encoding is kept while the
dynamic table does not change.

A fan-out connection sends the same ten or so headers on every stream (method, scheme, authority, the
campaign's TTL and urgency, the VAPID Authorization) plus a path and a length of its own, which are sent
never-indexed (server/push/http2.py) and so leave the table alone.  Once the repeated headers are in the
table, hpack still searched it (linearly) and re-encoded each index on every request, a few percent of a
worker's CPU; the bytes it produced are the same until the table changes, so they are kept.

The never-indexed path and length are written as literals without Huffman coding: hpack Huffman-codes in
Python, a character at a time, and an FCM endpoint's path is ~150 characters (tens of microseconds per
message, more than the rest of the header block); uncoded it is ~40 bytes longer on a ~600-byte request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hpack import Encoder, NeverIndexedHeaderTuple
from hpack.hpack import encode_integer
from hpack.table import HeaderTable

# a header name's first index in the static table (RFC 7541 appendix A), for literals with an indexed name
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_NAMES.setdefault(_name, _index)


def never_indexed(name: bytes, value: bytes) -> bytes:
    """A "literal header field never indexed" (RFC 7541 §6.2.3), its value not Huffman-coded."""
    length = encode_integer(len(value), 7)
    index = _STATIC_NAMES.get(name)
    if index is not None:
        prefix = encode_integer(index, 4)
        prefix[0] |= 0x10
        return b"".join((prefix, length, value))
    return b"".join((b"\x10", encode_integer(len(name), 7), name, length, value))


class RepeatingHeadersEncoder(Encoder):
    """An hpack Encoder that reuses the encoding of a header found whole in the table it has not changed."""

    def __init__(self) -> None:
        super().__init__()
        self._known: dict[tuple[bytes, bytes], bytes] = {}
        # what the table looked like when `_known` was filled: every change to it adds a newest entry or
        # evicts one (after an addition, or for a smaller size), so its newest entry and length tell a change
        self._newest: object = None
        self._length = 0

    def encode(self, headers: Iterable[Any], huffman: bool = True) -> bytes:
        """A request's header block: hpack's, except that never-indexed values are not Huffman-coded."""
        if isinstance(headers, dict):
            return super().encode(headers, huffman)
        parts = []
        if self.header_table.resized:
            parts.append(self._encode_table_size_change())
            self.header_table.resized = False
        for header in headers:
            name, value = header[0], header[1]
            if not isinstance(name, bytes):
                name = name.encode("utf-8")
            if not isinstance(value, bytes):
                value = value.encode("utf-8")
            if isinstance(header, NeverIndexedHeaderTuple) or (len(header) > 2 and header[2]):
                parts.append(never_indexed(name, value))
            else:
                parts.append(self.add((name, value), False, huffman))
        return b"".join(parts)

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
