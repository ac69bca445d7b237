"""Search terms for Chinese/English documents, matched by MongoDB `$all`.

MongoDB text indexes cannot segment Chinese, so every searchable document stores
a precomputed, indexed `search_terms` array and a query becomes terms that must
all be present: ``{"search_terms": {"$all": query_terms(q)}}``.

Document terms (after `normalize`):

* every Han character and every Han character bigram of each Han run;
* for each Chinese word of >= 2 characters (all dictionary words jieba finds in
  the run, plus its accurate-mode words so that unknown names count too): every
  prefix of length >= 2 of its toneless pinyin ("hu" … "huaqiangbei") and of
  its initials ("hq", "hqb");
* other letter/digit tokens: the token if it has >= 2 characters or is a number,
  and, when it holds a letter, its prefixes of length >= 3 ("oys" → "oysters").

Query terms: a Han run is split into jieba words and each word gives its own
bigrams (a lone Han character gives itself); any other token is taken as is,
because documents already index pinyin, initials and word prefixes.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Final

from opencc import OpenCC

__all__ = ["MAX_QUERY_TERMS", "MAX_TERMS", "MAX_TERM_LEN", "index_terms", "normalize", "query_terms",
           "tiered_terms"]

# 400 keeps the multikey index to a few KB per document while a typical merchant
# (names plus a three-sentence description in zh-CN, zh-HK and en) needs ~370
# terms; texts are consumed in order, so the names, which callers pass first and
# which need well under 200 terms, are never the ones cut - only the tail of long
# descriptions is.
MAX_TERMS: Final = 400
# `$all` costs one index probe per term, and beyond a dozen or so terms a query
# is pasted prose that gains nothing from further terms.
MAX_QUERY_TERMS: Final = 16
# Longer tokens are URLs, ids or pinyin of whole phrases; documents index
# prefixes only up to this length and queries truncate to it, so both agree.
MAX_TERM_LEN: Final = 24
PARTICLES: Final = frozenset("的和与及在了是或")
# Han runs up to this length also index the pinyin of the whole run.
WHOLE_RUN_PINYIN: Final = 8

_HAN: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKEN: Final = re.compile(r"[^\W_]+")
_HAN_SPLIT: Final = re.compile(f"([{_HAN}]+)")
_HAN_RUN: Final = re.compile(f"[{_HAN}]+")


@functools.cache
def _to_simplified() -> OpenCC:
    # Loading the conversion tables costs ~20 ms; pay it on first use, once.
    # hk2s (not t2s) also folds Hong Kong variant forms such as 衞 and 粧.
    return OpenCC("hk2s")


def normalize(text: str) -> str:
    """NFKC (full-width → ASCII), lowercase, Traditional → Simplified, stripped."""
    folded = unicodedata.normalize("NFKC", text).lower()
    simplified: str = _to_simplified().convert(folded)
    return simplified.strip()


def _tokens(normalized: str) -> Iterator[tuple[bool, str]]:
    """(is_han, token) pairs; punctuation and spaces only separate tokens."""
    for match in _TOKEN.finditer(normalized):
        for part in _HAN_SPLIT.split(match.group()):
            if part:
                yield _HAN_RUN.fullmatch(part) is not None, part


def _prefixes(word: str, shortest: int) -> Iterator[str]:
    for length in range(shortest, min(len(word), MAX_TERM_LEN) + 1):
        yield word[:length]


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)] if len(run) > 1 else [run]


@functools.lru_cache(maxsize=65_536)
def _pinyin_words(run: str) -> tuple[str, ...]:
    # rjieba and pypinyin load their dictionaries (~130 ms and ~200 ms) when
    # imported; importing here keeps that off this module's import, and Python's
    # module cache makes it happen once per process.
    import rjieba

    # Accurate mode alone misses words the context steals: in 深圳华强北商圈 it
    # yields 深圳华强|北, while full mode still finds 华强北.
    # A short run is usually a whole name (沙井蚝 segments as 沙井|蚝): its own pinyin
    # lets "shajinghao" and "sjh" find it.
    whole = (run,) if 2 <= len(run) <= WHOLE_RUN_PINYIN else ()
    words = dict.fromkeys(w for w in (*whole, *rjieba.cut(run), *rjieba.cut_all(run)) if len(w) >= 2)
    return tuple(words)


@functools.lru_cache(maxsize=262_144)
def _pinyin_terms(word: str) -> tuple[str, ...]:
    # Words recur across a city's names and addresses (华强北, 深圳市): spell each once.
    return tuple(_spell(word))


def _spell(word: str) -> Iterator[str]:
    from pypinyin import lazy_pinyin

    syllables = lazy_pinyin(word)
    # Characters pypinyin does not know come back unchanged; a partial spelling
    # would only mislead, so such words get no pinyin.
    if not all(s.isascii() and s.isalpha() for s in syllables):
        return
    yield from _prefixes("".join(syllables), 2)
    # Style.FIRST_LETTER is the first letter of each toneless syllable; deriving
    # it here saves a second dictionary pass.
    yield from _prefixes("".join(s[0] for s in syllables), 2)


def _document_terms(normalized: str) -> Iterator[str]:
    for is_han, token in _tokens(normalized):
        if is_han:
            yield from token
            if len(token) > 1:
                yield from _bigrams(token)
            for word in _pinyin_words(token):
                yield from _pinyin_terms(word)
        else:
            if len(token) >= 2 or token.isdigit():
                yield token[:MAX_TERM_LEN]
            if not token.isdigit():
                yield from _prefixes(token, 3)


@functools.lru_cache(maxsize=65_536)
def _text_terms(text: str) -> tuple[str, ...]:
    # Content repeats texts (addresses, descriptions, category slugs, a name in the name and title
    # terms): segmenting and spelling each distinct text once keeps a city-sized load fast.
    return tuple(_document_terms(normalize(text)))


def index_terms(texts: Iterable[str]) -> list[str]:
    """All terms for a document, sorted and deduplicated, at most MAX_TERMS.

    Pass the names first: texts fill the budget in order, so a long description
    can only crowd out its own tail, never the names before it.
    """
    return tiered_terms([texts])[0]


def tiered_terms(tiers: Iterable[Iterable[str]]) -> list[list[str]]:
    """`index_terms` of each tier together with all the tiers before it, in one pass.

    A merchant's name, name-or-address and whole-document terms share their texts: each text is
    merged once instead of once per tier.  Element i equals ``index_terms(tiers[0] + … + tiers[i])``.
    """
    seen: dict[str, None] = {}
    out: list[list[str]] = []
    for texts in tiers:
        for text in texts:
            if len(seen) >= MAX_TERMS:
                break
            terms = _text_terms(text)
            if len(seen) + len(terms) <= MAX_TERMS:
                seen.update(dict.fromkeys(terms))  # cannot pass the cap: the whole text in C
                continue
            for term in terms:
                if term not in seen:
                    if len(seen) >= MAX_TERMS:
                        break
                    seen[term] = None
        out.append(sorted(seen))
    return out


def _query_han_terms(run: str) -> list[str]:
    import rjieba

    words = rjieba.cut(run)
    if all(len(w) == 1 for w in words):
        # No word found (an unknown name split into characters): keep the run's
        # adjacency instead of accepting its characters anywhere.
        return _bigrams(run)
    # Bigrams stay inside query words: 华强北手机 must find 华强北数码手机城, where
    # 北手 never occurs. Documents index every bigram whatever their own
    # segmentation, so only the query side needs to know where words end. A lone
    # character that is a particle (的, 和) is dropped; any other (the 蚝 of
    # 沙井|蚝) binds to its neighbour, so 沙井蚝 does not widen to all of 沙井.
    terms: list[str] = []
    position = 0
    for w in words:
        if len(w) > 1:
            terms.extend(_bigrams(w))
        elif w not in PARTICLES:
            before, after = run[position - 1 : position], run[position + 1 : position + 2]
            before = "" if before in PARTICLES else before
            after = "" if after in PARTICLES else after
            terms.append(before + w if before else w + after)
        position += len(w)
    return terms


def query_terms(query: str) -> list[str]:
    """Terms a document must all hold to match `query`, at most MAX_QUERY_TERMS.

    Empty for a query without letters, digits or Han characters.
    """
    terms: dict[str, None] = {}
    single_letters: list[str] = []
    for is_han, token in _tokens(normalize(query)):
        if is_han:
            terms.update(dict.fromkeys(_query_han_terms(token)))
        elif len(token) >= 2 or token.isdigit():
            terms[token[:MAX_TERM_LEN]] = None
        else:
            single_letters.append(token)
    if not terms:
        # Documents never index single letters, so "a" matches nothing - which
        # is the honest answer; returning [] would read as "no filter".
        terms.update(dict.fromkeys(single_letters))
    return list(terms)[:MAX_QUERY_TERMS]
