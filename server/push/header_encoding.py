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
from hpack.table import HeaderTable

# a header name's first index in the static table (RFC 7541 appendix A), for literals with an indexed name
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_NAMES.setdefault(_name, _index)


def _integer(value: int, prefix_bits: int, flags: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with `flags` in its first byte's high bits (hpack's encode_integer, less
    its debug log call)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    out = bytearray((flags | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def never_indexed(name: bytes, value: bytes) -> bytes:
    """A "literal header field never indexed" (RFC 7541 §6.2.3), its value not Huffman-coded."""
    index = _STATIC_NAMES.get(name)
    if index is not None:
        return b"".join((_integer(index, 4, 0x10), _integer(len(value), 7, 0), value))
    return b"".join((b"\x10", _integer(len(name), 7, 0), name, _integer(len(value), 7, 0), value))


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
        known = self._current()
        for header in headers:
            encoded = known.get(header) if type(header) is tuple else None
            if encoded is None:
                name, value = header[0], header[1]
                if not isinstance(name, bytes):
                    name = name.encode("utf-8")
                if not isinstance(value, bytes):
                    value = value.encode("utf-8")
                if isinstance(header, NeverIndexedHeaderTuple) or (len(header) > 2 and header[2]):
                    encoded = never_indexed(name, value)
                else:
                    encoded = self.add((name, value), False, huffman)
                    known = self._current()  # the addition may have changed the table
            parts.append(encoded)
        return b"".join(parts)

    def _current(self) -> dict[tuple[bytes, bytes], bytes]:
        """The kept encodings, emptied if the table changed since they were kept."""
        entries = self.header_table.dynamic_entries
        newest = entries[0] if entries else None
        if newest is not self._newest or len(entries) != self._length:
            self._known.clear()
            self._newest, self._length = newest, len(entries)
        return self._known

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        if sensitive:  # never indexed: a literal, and the table is left as it is
            return super().add(to_add, sensitive, huffman)
        entries = self.header_table.dynamic_entries
        newest = entries[0] if entries else None
        encoded = self._current().get(to_add)
        if encoded is None:
            encoded = super().add(to_add, sensitive, huffman)
            after = entries[0] if entries else None
            if after is newest and len(entries) == self._length:  # found whole: the same bytes next time
                self._known[to_add] = encoded
        return encoded
