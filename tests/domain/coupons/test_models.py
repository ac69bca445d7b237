"""Coupon codes: entropy, the check symbol against typos, and what people type."""

from __future__ import annotations

import math

from server.domain.coupons.models import ALPHABET, DATA_LENGTH, LENGTH, display, new_code, normalise, problem


def test_codes_carry_at_least_40_random_bits_in_8_to_10_readable_characters() -> None:
    assert DATA_LENGTH * math.log2(len(ALPHABET)) >= 40
    assert 8 <= LENGTH <= 10
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == LENGTH and problem(c) is None for c in codes)
    assert not set("ILOU") & set("".join(codes)), "no symbol that reads as another"


def test_every_single_substitution_is_caught() -> None:
    for _ in range(50):
        code = new_code()
        for i in range(LENGTH):
            for symbol in ALPHABET:
                if symbol != code[i]:
                    typo = code[:i] + symbol + code[i + 1:]
                    assert problem(typo) == "check", (code, typo)


def test_every_adjacent_transposition_is_caught() -> None:
    for _ in range(300):
        code = new_code()
        for i in range(LENGTH - 1):
            if code[i] != code[i + 1]:
                swapped = code[:i] + code[i + 1] + code[i] + code[i + 2:]
                assert problem(swapped) == "check", (code, swapped)


def test_typed_input_is_normalised() -> None:
    code = new_code()
    shown = display(code)
    assert normalise(shown) == code
    assert normalise(f"  {shown.lower()} ") == code
    assert normalise(" ".join(code)) == code
    assert normalise("o1l-i0") == "01110"


def test_malformed_input_is_named_as_such() -> None:
    assert problem(normalise("hello")) == "malformed"
    assert problem(normalise("ABCDEFGHJKZ")) == "malformed"
    assert problem("Z" * LENGTH) == "malformed"
    assert problem("") == "malformed"
