"""Unigram/bigram counting and PMI ranking, as MetaCLIP 2's build_ngram.py.

A text (one article) is tokenized whole after HTML-tag removal (metadata.tokenizer; no-space
languages with a word segmenter, metadata.segmenters). Tokens are stripped, empty ones skipped; a
pure-punctuation token ends the current bigram run, and so does, in no-space languages, a "weird"
token (starts with punctuation or has half of a bracket pair). Line breaks are whitespace.

PMI is NLTK's `BigramAssocMeasures.pmi`, which MetaCLIP 1 used to score Wikipedia bigrams:
log2(c(ab) · N / (c(a) · c(b))) with N the total unigram count, computed with NLTK's operations
(natural logs divided by ln 2), so that equal scores tie as there.
"""
from __future__ import annotations

import math
from collections import Counter

from metadata import segmenters
from metadata.tokenizer import is_pure_punctuation, is_weird, remove_html_tags, simple_token_runs, simple_tokenize


def tokenize(text: str, lang: str, segmenter: str | None = None) -> list[str]:
    """Tokens of a text in `lang` (see module doc), with `segmenter` in a no-space language."""
    chosen = segmenters.choose(lang, segmenter)
    if chosen is None:
        return simple_tokenize(text)
    segment = segmenters.load(chosen.name)
    return [token for chunk in text.split() for token in segment(chunk)]


class NgramCounts:
    """Unigram and bigram counts over a corpus, fed one text (article) at a time."""

    def __init__(self, lang: str, segmenter: str | None = None):
        self.lang = lang
        chosen = segmenters.choose(lang, segmenter)
        self.no_space = chosen is not None
        self.segmenter = chosen.name if chosen else None
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[tuple[str, str]] = Counter()

    def add_text(self, text: str) -> None:
        """Count one text (an article) as the reference counts one extracted file."""
        text = remove_html_tags(text)
        if self.no_space:
            self.add_tokens(tokenize(text, self.lang, self.segmenter))
        else:
            for run in simple_token_runs(text):
                self.unigrams.update(run)
                self.bigrams.update(zip(run, run[1:]))

    def add_tokens(self, tokens: list[str]) -> None:
        prev = None
        unigrams, bigrams = self.unigrams, self.bigrams
        for token in tokens:
            token = token.strip()
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
        uni = self.unigrams
        scored = []
        for (a, b), c in self.bigrams.items():
            if c < min_count:
                continue
            pmi = nltk_pmi(c, uni[a], uni[b], total)
            if pmi > threshold:
                scored.append((self.join(a, b), pmi))
        scored.sort(key=lambda kv: -kv[1])
        return scored


def nltk_pmi(count: int, count_a: int, count_b: int, total: int) -> float:
    """NLTK's BigramAssocMeasures.pmi with its float operations: log(c·N, 2) − log(c(a)·c(b), 2)."""
    return math.log(count * total, 2.0) - math.log(count_a * count_b, 2.0)
