"""Property: every matcher backend equals a plain scan (`pad_entry(entry) in spacing(text)` per entry)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.matcher import BACKENDS, Matcher, pad_entry, spacing

# words, punctuation (wrapped and not), spaces and Unicode whitespace, CJK, kana, Thai, join candidates
ALPHABET = list("abAB1 ,.;:?!`'-()\t\n\r") + ["\u00a0", "\u3000", "猫", "狗", "。", "カ", "メ", "の", "ｶ",
                                               "ก", "ข", "\x00", "\uffff"]
chars = st.sampled_from(ALPHABET)
words = st.sampled_from(["ab", "a", "b", "AB", "1", "猫狗", "カメ", "กข"])
piece = st.one_of(chars, words)
entry = st.lists(piece, min_size=1, max_size=5).map("".join)
text = st.lists(piece, max_size=25).map("".join)


def matchers(entries, ids, compat):
    """Every backend, plus the ngram backend's numpy walk (the C kernel is its default)."""
    for backend in BACKENDS:
        yield backend, Matcher(entries, ids, compat=compat, backend=backend)
    numpy_walk = Matcher(entries, ids, compat=compat, backend="ngram")
    numpy_walk._impl.kernel = False
    yield "ngram (numpy walk)", numpy_walk


def plain_scan(texts, entries, ids, compat):
    return [sorted({i for i, e in zip(ids, entries) if e and pad_entry(e, compat) in spacing(t)}) for t in texts]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(entry, min_size=1, max_size=12), texts=st.lists(text, max_size=6),
       compat=st.booleans(), data=st.data())
@pytest.mark.slow
def test_backends_equal_plain_scan(entries, texts, compat, data):
    ids = data.draw(st.permutations(range(len(entries))))  # ids need not follow entry order
    expected = plain_scan(texts, entries, ids, compat)
    for name, matcher in matchers(entries, ids, compat):
        assert matcher.match(texts).lists() == expected, name


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(entry, min_size=1, max_size=8), texts=st.lists(text, min_size=1, max_size=4))
def test_texts_built_from_entries_match_them(entries, texts):
    """Texts that contain the entries (joined by spaces) exercise many true matches, in both modes."""
    texts = texts + [" ".join(entries), "".join(entries)]
    ids = list(range(len(entries)))
    for compat in (False, True):
        expected = plain_scan(texts, entries, ids, compat)
        for name, matcher in matchers(entries, ids, compat):
            assert matcher.match(texts).lists() == expected, name
