"""Unit tests for server.domain.search.terms (pure functions, no I/O)."""

from __future__ import annotations

import pytest

from server.domain.search.terms import (
    MAX_QUERY_TERMS,
    MAX_TERM_LEN,
    MAX_TERMS,
    index_terms,
    normalize,
    query_terms,
    tiered_terms,
)

MERCHANT_NAMES = ["华强北数码手机城", "華強北數碼手機城", "Huaqiangbei Digital Mobile Mall"]
MERCHANT_DESCRIPTIONS = [
    "位于深圳华强北商圈的大型数码市场。主营手机、配件及电子产品批发零售。营业时间为每天上午十点至晚上九点。",
    "位於深圳華強北商圈的大型數碼市場。主營手機、配件及電子產品批發零售。每日上午十時至晚上九時營業。",
    (
        "A large electronics market in Shenzhen's Huaqiangbei district. Sells phones, accessories "
        "and electronics wholesale and retail. Open daily from 10am to 9pm."
    ),
]


def matches(query: str, texts: list[str]) -> bool:
    """What `{"search_terms": {"$all": query_terms(query)}}` does for one document."""
    terms = query_terms(query)
    return bool(terms) and set(terms) <= set(index_terms(texts))


# --- normalize -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("華強北", "华强北"),
        ("蠔油", "蚝油"),
        ("衞生", "卫生"),  # Hong Kong variant form
        ("ＨＱＢ", "hqb"),  # full-width
        ("  HuaQiangBei\u3000", "huaqiangbei"),  # ideographic space stripped
        ("华强北", "华强北"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


# --- the 华强北 queries ------------------------------------------------------


HQB_QUERIES = [
    "华强北", "華強北", "huaqiangbei", "HuaQiangBei", "hqb", "华强", "huaqiang", "华强北!", "ＨＱＢ",
]


@pytest.mark.parametrize("query", HQB_QUERIES)
def test_queries_match_document_named_hqb(query: str) -> None:
    assert matches(query, ["华强北"])


@pytest.mark.parametrize("query", HQB_QUERIES)
def test_queries_match_hqb_inside_a_description(query: str) -> None:
    # jieba's accurate mode segments this as 深圳华强|北; the term must survive that.
    assert matches(query, ["赛格电子", "位于深圳华强北商圈的大型数码市场。"])


def test_traditional_name_matches_simplified_and_pinyin_queries() -> None:
    for query in ("华强北", "hqb", "huaqiangbei"):
        assert matches(query, ["華強北"])


def test_pinyin_terms_of_a_multi_syllable_word() -> None:
    terms = set(index_terms(["华强北"]))
    assert {"huaqiangbei", "hqb", "hq", "hu", "hua", "huaqiangb"} <= terms
    assert "h" not in terms  # prefixes start at 2 letters
    assert {"华", "强", "北", "华强", "强北"} <= terms


def test_unrelated_queries_do_not_match() -> None:
    for query in ("东门", "dongmen", "hqx", "华北", "北强"):
        assert not matches(query, ["华强北"])


# --- multi-word Chinese queries ---------------------------------------------


def test_space_separated_query_needs_every_word() -> None:
    assert matches("华强 手机", ["华强数码手机城"])
    assert not matches("华强 手机", ["华强北美食广场"])


def test_unspaced_query_is_segmented() -> None:
    assert query_terms("华强北手机") == ["华强", "强北", "手机"]
    assert matches("华强北手机", ["华强北手机批发"])
    assert matches("华强北手机", ["华强北数码手机城"])  # words need not be adjacent
    assert not matches("华强北手机", ["华强北美食广场"])


def test_particles_between_query_words_are_dropped() -> None:
    assert matches("华强北的手机", ["华强北手机批发"])


def test_single_han_character_query() -> None:
    assert query_terms("北") == ["北"]
    assert matches("北", ["华强北"])
    assert not matches("南", ["华强北"])


def test_traditional_query_matches_simplified_document() -> None:
    assert matches("蠔油", ["蚝油捞面"])
    assert matches("蚝油", ["蠔油撈麵"])


# --- other tokens -----------------------------------------------------------


def test_mixed_latin_and_chinese_query() -> None:
    assert query_terms("Dongmen 东门") == ["dongmen", "东门"]
    assert matches("Dongmen 东门", ["东门老街"])
    assert matches("Dongmen 东门", ["Dongmen Old Street", "東門老街"])
    assert not matches("Dongmen 东门", ["Dongmen Old Street"])


def test_english_words_and_prefixes() -> None:
    doc = ["Fresh Oysters"]
    assert matches("oys", doc)
    assert matches("OYSTERS", doc)
    assert matches("fresh oyst", doc)
    assert not matches("oy", doc)  # prefixes start at 3 characters
    assert not matches("oysterss", doc)


def test_numbers_are_kept() -> None:
    terms = set(index_terms(["7号店 Shop 2024"]))
    assert {"7", "2024", "号店", "shop"} <= terms
    assert "202" not in terms  # numbers are not prefixed
    assert matches("7", ["7号店"])
    assert matches("2024", ["Since 2024"])


def test_long_tokens_are_truncated_alike_on_both_sides() -> None:
    word = "supercalifragilisticexpialidocious"
    terms = index_terms([word])
    assert all(len(t) <= MAX_TERM_LEN for t in terms)
    assert matches(word, [word])
    assert query_terms(word) == [word[:MAX_TERM_LEN]]


# --- query edge cases -------------------------------------------------------


@pytest.mark.parametrize("query", ["", " ", "\u3000\n\t", "!!!", "，。、？"])
def test_blank_or_punctuation_only_query(query: str) -> None:
    assert query_terms(query) == []


def test_punctuation_is_ignored() -> None:
    assert query_terms("华强北!") == query_terms("华强北") == query_terms("「华强北」。")
    assert query_terms("hqb?!") == ["hqb"]


def test_single_letter_query_matches_nothing_rather_than_everything() -> None:
    assert query_terms("a") == ["a"]
    assert not matches("a", ["a shop"])
    # Beside other terms a stray letter is dropped instead of failing the query.
    assert query_terms("dongmen a") == ["dongmen"]


def test_very_long_query_is_capped_in_order() -> None:
    words = [f"word{i:02d}" for i in range(40)]
    terms = query_terms(" ".join(words))
    assert terms == words[:MAX_QUERY_TERMS]
    long_chinese = "位于深圳华强北商圈的大型数码市场主营手机配件及电子产品批发零售" * 5
    assert len(query_terms(long_chinese)) == MAX_QUERY_TERMS


def test_query_terms_are_deduplicated() -> None:
    assert query_terms("hqb HQB ｈｑｂ") == ["hqb"]


# --- index_terms shape and bounds -------------------------------------------


def test_index_terms_sorted_unique_and_accepts_any_iterable() -> None:
    terms = index_terms(text for text in [*MERCHANT_NAMES, *MERCHANT_DESCRIPTIONS])
    assert terms == sorted(set(terms))
    assert index_terms([]) == []
    assert index_terms(["", "  ", "!!"]) == []


def test_typical_merchant_stays_under_the_cap() -> None:
    terms = index_terms([*MERCHANT_NAMES, *MERCHANT_DESCRIPTIONS])
    assert len(terms) < MAX_TERMS
    assert all(0 < len(t) <= MAX_TERM_LEN for t in terms)
    queries = ("华强北", "huaqiangbei", "hqb", "手机", "shouji", "批发", "electronics", "elec", "10am")
    for query in queries:
        assert set(query_terms(query)) <= set(terms), query


def test_names_survive_a_5000_character_description() -> None:
    sentences = [
        "深圳东门老街的蚝油捞面远近闻名，每天清晨开始排队。",
        "店主来自潮汕，坚持用传统砂锅慢火熬制汤底。",
        "Fresh oysters arrive daily from Shajing, shucked to order.",
        "周末附近停车位紧张，建议乘坐地铁前往。",
    ]
    description = " ".join(f"{sentences[i % 4]} 第{i}号档口 stall{i}" for i in range(150))
    assert len(description) >= 5000
    name_terms = set(index_terms(MERCHANT_NAMES))
    terms = index_terms([*MERCHANT_NAMES, description])
    assert len(terms) == MAX_TERMS
    assert name_terms <= set(terms)
    assert matches("hqb", [*MERCHANT_NAMES, description])


def test_huge_single_run_is_bounded() -> None:
    run = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(5000))
    terms = index_terms(["华强北", run])
    assert len(terms) == MAX_TERMS
    assert set(index_terms(["华强北"])) <= set(terms)


# --- tiered_terms: the name, name-or-address and whole-document terms in one pass ----------------


def test_each_tier_holds_its_own_and_every_earlier_tiers_terms() -> None:
    names, addresses = ["华强北"], ["深南中路 3018号"]
    name_terms, title_terms, all_terms = tiered_terms([names, addresses, ["electronics"]])
    assert name_terms == ["hq", "hqb", "hu", "hua", "huaq", "huaqi", "huaqia", "huaqian", "huaqiang", "huaqiangb",
                          "huaqiangbe", "huaqiangbei", "北", "华", "华强", "强", "强北"]
    assert set(name_terms) < set(title_terms) < set(all_terms)
    assert {"3018", "深南"} <= set(title_terms) - set(name_terms)
    assert {"electronics", "ele", "elec"} <= set(all_terms) - set(title_terms)


@pytest.mark.parametrize("stall_count", [0, 40, 150])
def test_tiers_equal_index_terms_of_their_texts_also_at_the_cap(stall_count: int) -> None:
    description = " ".join(f"第{i}号档口 stall{i} 蚝油捞面" for i in range(stall_count))
    tiers = [MERCHANT_NAMES, ["深圳市福田区华强北路1002号"], [*MERCHANT_DESCRIPTIONS, description]]
    got = tiered_terms(tiers)
    assert got == [index_terms(MERCHANT_NAMES), index_terms([*MERCHANT_NAMES, *tiers[1]]),
                   index_terms([*MERCHANT_NAMES, *tiers[1], *tiers[2]])]
    assert len(got[2]) == (MAX_TERMS if stall_count == 150 else len(got[2])) <= MAX_TERMS
