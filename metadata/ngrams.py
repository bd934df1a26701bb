"""Tokenizing, unigram/bigram counting and PMI ranking, as MetaCLIP 2's build_ngram.py.

Spaced languages: split on whitespace, then split punctuation off both ends of each token.
No-space languages use an offline word segmenter: jieba (zh), tinysegmenter (ja), pythainlp's
newmm (th). A pure-punctuation token ends the current bigram run, as does a line break; in no-space
languages so does a "weird" token (starts with punctuation or has an unpaired bracket/quote).

PMI is NLTK's `BigramAssocMeasures.pmi`, which MetaCLIP 1 used to score Wikipedia bigrams:
log2(c(ab) · N / (c(a) · c(b))) with N the total unigram count.
"""
from __future__ import annotations

import math
import string
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Callable

from curation.common import UserError

EXTRA_PUNCTUATION = frozenset("，。、；：？¿！“”‘’（）【】《》〈〉「」『』～—")
PUNCTUATION = frozenset(string.punctuation) | EXTRA_PUNCTUATION
PAIRED = (("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"), ("‘", "’"), ("（", "）"), ("【", "】"),
          ("《", "》"), ("〈", "〉"), ("「", "」"), ("『", "』"))
SEGMENTERS = {"zh": "jieba", "ja": "tinysegmenter", "th": "pythainlp newmm"}
# No-space languages of MetaCLIP 2 for which no offline segmenter is packaged here.
UNSEGMENTED = frozenset({"bo", "dz", "km", "lo", "my"})


def is_punct(ch: str) -> bool:
    return ch in PUNCTUATION or unicodedata.category(ch).startswith("P")


def is_pure_punctuation(s: str) -> bool:
    return is_punct(s[0]) and all(is_punct(ch) for ch in s) if s else True


def is_weird(token: str) -> bool:
    """MetaCLIP's check_weird_token: starts with punctuation or has an unpaired bracket/quote."""
    if is_punct(token[0]):
        return True
    return any((a in token) != (b in token) for a, b in PAIRED)


@lru_cache(maxsize=None)
def segmenter(lang: str) -> Callable[[str], list[str]] | None:
    """The word segmenter for a no-space language, None for spaced languages."""
    if lang in UNSEGMENTED:
        raise UserError(f"--lang {lang}: no offline word segmenter for this no-space script; supported: {', '.join(SEGMENTERS)}")
    if lang == "zh":
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        return lambda text: jieba.lcut(text)
    if lang == "ja":
        import tinysegmenter

        return tinysegmenter.TinySegmenter().tokenize
    if lang == "th":
        from pythainlp.tokenize import word_tokenize

        return lambda text: word_tokenize(text, engine="newmm", keep_whitespace=False)
    return None


def _split_punct(chunk: str, out: list[str]) -> None:
    i, j = 0, len(chunk)
    while i < j and is_punct(chunk[i]):
        i += 1
    while j > i and is_punct(chunk[j - 1]):
        j -= 1
    out.extend(chunk[:i])
    if i < j:
        out.append(chunk[i:j])
    out.extend(chunk[j:])


def tokenize(line: str, lang: str) -> list[str]:
    """Tokens of one line of text (see module doc)."""
    segment = segmenter(lang)
    tokens: list[str] = []
    for chunk in line.split():
        if segment is None:
            _split_punct(chunk, tokens)
        else:
            tokens.extend(t.strip() for t in segment(chunk))
    return tokens


class NgramCounts:
    """Unigram and bigram counts over a corpus, fed line by line."""

    def __init__(self, lang: str):
        self.lang = lang
        self.no_space = segmenter(lang) is not None
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[tuple[str, str]] = Counter()

    def add_text(self, text: str) -> None:
        for line in text.splitlines():
            self.add_tokens(tokenize(line, self.lang))

    def add_tokens(self, tokens: list[str]) -> None:
        prev = None
        unigrams, bigrams = self.unigrams, self.bigrams
        for token in tokens:
            if not token:
                continue
            if is_pure_punctuation(token) or (self.no_space and is_weird(token)):
                prev = None
                continue
            unigrams[token] += 1
            if prev is not None:
                bigrams[(prev, token)] += 1
            prev = token

    def join(self, a: str, b: str) -> str:
        """A bigram as an entry: space-joined, or concatenated in no-space languages (MetaCLIP 2)."""
        return a + b if self.no_space else f"{a} {b}"

    def top_unigrams(self) -> list[str]:
        """Unigrams by count, most frequent first (ties keep first-seen order)."""
        return [w for w, _ in sorted(self.unigrams.items(), key=lambda kv: -kv[1])]

    def pmi_bigrams(self, threshold: float, min_count: int = 1) -> list[tuple[str, float]]:
        """Bigrams with count >= min_count and PMI > threshold, highest PMI first, as entries."""
        total = sum(self.unigrams.values())
        if not total:
            return []
        log_total = math.log2(total)
        uni = self.unigrams
        scored = []
        for (a, b), c in self.bigrams.items():
            if c < min_count:
                continue
            pmi = math.log2(c) + log_total - math.log2(uni[a]) - math.log2(uni[b])
            if pmi > threshold:
                scored.append((self.join(a, b), pmi))
        scored.sort(key=lambda kv: -kv[1])
        return scored
