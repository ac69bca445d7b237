"""The HPACK encoder that reuses repeated headers' encodings: byte for byte what hpack's own encoder sends (the
never-indexed path and length as hpack writes them without Huffman coding), so a push service's decoder keeps
the same table, through evictions and table size changes."""

from __future__ import annotations

from hpack import Decoder, Encoder, NeverIndexedHeaderTuple

from server.push.header_encoding import RepeatingHeadersEncoder

Headers = list[tuple[bytes, bytes] | NeverIndexedHeaderTuple]


def request(i: int, token: bytes) -> Headers:
    return [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"fcm.googleapis.com"),
            NeverIndexedHeaderTuple(b":path", f"/fcm/send/{i:06d}".encode()),
            NeverIndexedHeaderTuple(b"content-length", str(100 + i % 7).encode()),
            (b"ttl", b"3600"), (b"urgency", b"normal"), (b"content-encoding", b"aes128gcm"),
            (b"authorization", b"vapid t=" + token + b", k=BPublicKey")]


def hpack_bytes(plain: Encoder, headers: Headers) -> bytes:
    """hpack's own encoding, header by header, its never-indexed values without Huffman coding."""
    return b"".join(plain.encode([h], huffman=not isinstance(h, NeverIndexedHeaderTuple)) for h in headers)


def test_same_bytes_as_hpack_and_decodable() -> None:
    plain, repeating, decoder = Encoder(), RepeatingHeadersEncoder(), Decoder()
    sequence: list[Headers] = []
    for i in range(200):
        # a new VAPID token now and then, a header that is indexed per request, and a large one that evicts
        token = f"token{i // 50}".encode() * 20
        headers = request(i, token)
        if i % 30 == 7:
            headers.append((b"x-once", f"value {i}".encode()))
        if i % 45 == 11:
            headers.append((b"x-large", b"z" * 3000))
        sequence.append(headers)
    for i, headers in enumerate(sequence):
        if i == 120:  # the peer shrinks the table (SETTINGS_HEADER_TABLE_SIZE), then grows it back
            plain.header_table_size = repeating.header_table_size = 256
            decoder.header_table_size = 256
        if i == 150:
            plain.header_table_size = repeating.header_table_size = 4096
            decoder.header_table_size = 4096
        expected = hpack_bytes(plain, headers)
        encoded = repeating.encode(headers)
        assert encoded == expected, i
        decoded = decoder.decode(encoded, raw=True)
        assert [(bytes(n), bytes(v)) for n, v in decoded] == [(bytes(h[0]), bytes(h[1])) for h in headers]


def test_a_full_table_that_adds_one_and_evicts_one() -> None:
    """The table's length stays the same while every index moves: the kept encodings must not be used."""
    plain, repeating = Encoder(), RepeatingHeadersEncoder()
    for i in range(300):
        headers = request(0, b"t" * 100)
        headers.insert(3, (b"x-fill", f"{i:0100d}".encode()))  # the same size each time: one in, one out
        if i % 3 == 0:
            headers.insert(4, (b"ttl", b"3600"))  # an equal entry again, once it has been evicted
        assert repeating.encode(headers) == hpack_bytes(plain, headers), i


def test_repeated_headers_cost_one_byte_each() -> None:
    encoder = RepeatingHeadersEncoder()
    first = encoder.encode(request(0, b"t" * 200))
    second = encoder.encode(request(1, b"t" * 200))
    # 7 repeated headers as one-byte indexes, plus the never-indexed path and length as literals
    assert len(second) < 40 < len(first)
