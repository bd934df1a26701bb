"""Matching rules case by case, compat vs fixed mode, and every backend equal to the reference loop."""
from __future__ import annotations

import numpy as np
import pytest

from matching.matcher import BACKENDS, Matcher, PyAhoBackend, pad_entry, padded_keys, reference_match, spacing
from matching.ngram import NgramBackend

ALL = ("reference", *BACKENDS)


def naive(texts, entries, ids=None, compat=False):
    """Obviously correct: for every entry, is its padded form a substring of the spaced text."""
    ids = range(len(entries)) if ids is None else ids
    return [sorted(i for i, e in zip(ids, entries) if e and pad_entry(e, compat) in spacing(t)) for t in texts]


def run(method, texts, entries, ids=None, compat=False):
    ids = list(range(len(entries))) if ids is None else ids
    if method == "reference":
        return reference_match(texts, entries, ids, compat)
    return Matcher(entries, ids, compat=compat, backend=method).match(texts).lists()


def matched(method, text, entries, compat=False):
    return [entries[i] for i in run(method, [text], entries, compat=compat)[0]]


CASES = [
    # (text, entries, expected matched entries)
    ("A cat, a dog.", ["cat", "dog", "a dog", "cat,", "A"], ["cat", "dog", "a dog", "A"]),  # punctuation glued
    ("cat.dog;bird:fish?yes!no`x", ["cat", "dog", "bird", "fish", "yes", "no", "x"],
     ["cat", "dog", "bird", "fish", "yes", "no", "x"]),
    ("red-cat's toy", ["red", "cat", "red-cat's", "toy"], ["red-cat's", "toy"]),  # - and ' are not wrapped
    ("New\tYork\nCity\rhall", ["New York", "York City", "City hall", "New York City"],
     ["New York", "York City", "City hall", "New York City"]),  # tabs/newlines become spaces
    ("new york", ["New York", "new york", "York"], ["new york"]),  # case kept
    ("I love New York City", ["New York", "York", "New York City", "York City", "City", "Love"],
     ["New York", "York", "New York City", "York City", "City"]),  # overlapping
    ("iPhone 12 Pro Max 128GB", ["12", "iPhone 12", "128", "128GB", "Pro Max", "2"],
     ["12", "iPhone 12", "128GB", "Pro Max"]),  # digits are word characters
    ("cat", ["cat"], ["cat"]), ("cat sat", ["cat", "sat"], ["cat", "sat"]),  # text start/end
    ("", ["cat", "a"], []), (" ", ["cat"], []),
    ("a  b", ["a b", "a", "b"], ["a", "b"]),  # a double space is not a single one
    # NBSP/U+3000 are not spaces
    ("a\u00a0b c\u3000d", ["a", "a\u00a0b", "c", "d", "c\u3000d"], ["a\u00a0b", "c\u3000d"]),
    ("我爱北京天安门。", ["北京", "天安门", "我", "爱北", "京天", "门。", "北京天安门", "上海"],
     ["北京", "天安门", "我", "爱北", "京天", "门。", "北京天安门"]),  # CJK: anywhere
    ("ฉันรักแมว", ["แมว", "รัก", "ฉัน", "รักแมว"], ["แมว", "รัก", "ฉัน", "รักแมว"]),  # Thai
    ("東京タワーの写真", ["東京", "タワー", "写真", "の", "京タ"],
     ["東京", "タワー", "写真", "の", "京タ"]),  # kana fixed
    ("price: $5 (new)", [":", "$5", "(new)", "$", "new", "5"], [":", "$5", "(new)", "$"]),  # punctuation-only
    ("C++ and C#11", ["C++", "C#", "C", "and"], ["C++", "C#", "and"]),  # trailing punctuation: no right pad
    ("U.S. Army", ["U.S.", "U.S", "Army", "S", "U"], ["Army", "S", "U"]),  # "." is wrapped: "U.S" never matches
    ("...!!!", ["...", ".", "!!!", "!"], [".", "!"]),
    ("猫 cat 猫cat", ["猫 cat", "cat 猫", "猫cat", "cat"], ["猫 cat", "cat 猫", "猫cat", "cat"]),
]


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("text,entries,expected", CASES)
def test_rules(method, text, entries, expected):
    assert sorted(matched(method, text, entries)) == sorted(expected)
    assert run(method, [text], entries) == naive([text], entries)


@pytest.mark.parametrize("method", ALL)
def test_compat_differs_exactly_on_kana(method):
    entries = ["カメラ", "の", "ひらがな", "ｶﾒﾗ", "東京", "写真", "カメラ東京", "東京カメラ", "camera"]
    texts = ["カメラの写真", "東京カメラ", "ｶﾒﾗ ok", "camera カメラ", "ひらがな"]
    fixed, compat = run(method, texts, entries), run(method, texts, entries, compat=True)
    kana = {i for i, e in enumerate(entries) if any(0x3040 <= ord(c) <= 0x30FF or 0xFF66 <= ord(c) <= 0xFF9F
                                                    for c in (e[0], e[-1]))}
    differing = set()
    for f, c in zip(fixed, compat):
        differing |= set(f) ^ set(c)
    assert differing and differing <= kana
    assert fixed == naive(texts, entries) and compat == naive(texts, entries, compat=True)
    assert [entries[i] for i in fixed[0]] == ["カメラ", "の", "写真"]
    assert compat[0] == [entries.index("写真")]  # the reference pads kana-initial entries: no match


@pytest.mark.parametrize("method", BACKENDS)
def test_duplicate_entries_keep_every_id(method):
    res = Matcher(["cat", "dog", "cat"], [7, 3, 2], backend=method).match(["a cat", "dog and cat", "none"])
    assert res.lists() == [[2, 7], [2, 3, 7], []]
    assert res.offsets.dtype == np.int64 and res.entry_ids.dtype == np.int32


@pytest.mark.parametrize("method", BACKENDS)
def test_edges(method):
    assert Matcher([], [], backend=method).match(["a b"]).lists() == [[]]
    m = Matcher(["", "a"], [0, 1], backend=method)
    assert m.match([]).lists() == [] and len(m.match([])) == 0
    assert m.match(["a", "a", "", "b a"]).lists() == [[1], [1], [], [1]]  # repeated texts, empty entry ignored
    long_text = "word " * 20_000 + "needle"
    assert Matcher(["needle", "word word"], [0, 1], backend=method).match([long_text]).lists() == [[0, 1]]


@pytest.mark.parametrize("method", BACKENDS)
def test_lone_surrogates(method):
    """Not in Arrow data, but a Python caller may pass them: matched like any other code point."""
    entries, texts = ["a\ud800b", "猫", "x", "\udfff"], ["a\ud800b 猫 x", "\udfff猫", "x x", "q"]
    assert run(method, texts, entries) == naive(texts, entries)


@pytest.mark.parametrize("method", BACKENDS)
def test_match_array_equals_match(method):
    import pyarrow as pa

    m = Matcher(["dog", "hot dog", "猫"], [4, 7, 9], backend=method)
    for texts in (["a hot dog", "猫", "a hot dog", "none", "dog", "猫"], ["dog", "cat"], []):
        got = m.match_array(pa.array(texts, pa.string()))
        assert got.lists() == m.match(texts).lists() == [sorted(ids) for ids in reference_match(
            texts, ["dog", "hot dog", "猫"], [4, 7, 9])]


def test_auto_and_unknown_backend():
    assert Matcher([], [], backend="auto").backend in BACKENDS
    with pytest.raises(ValueError, match="unknown matcher backend"):
        Matcher([], [], backend="nope")


def english_like(rng, n_texts):
    import wordfreq

    words = wordfreq.top_n_list("en", 3000)
    entries = words[:2000] + [f"{a} {b}" for a, b in rng.choice(words[:300], size=(1500, 2))]
    entries += [w.title() for w in words[:300]] + ["c++", "u.s.", "mr.", "'s", "#1", "...", "e-mail", "猫"]
    seps = [" ", " ", " ", ", ", ". ", " - ", "\t", "\u00a0", ": ", "!", "  "]
    texts = []
    for _ in range(n_texts):
        k = int(rng.integers(1, 30))
        ws = [w.title() if rng.random() < 0.15 else w for w in rng.choice(words[:2500], size=k)]
        texts.append("".join(w + seps[int(rng.integers(len(seps)))] for w in ws).strip())
    return list(dict.fromkeys(entries)), texts


def cjk_like(rng, n_texts):
    import wordfreq

    words = wordfreq.top_n_list("zh", 2000) + wordfreq.top_n_list("ja", 2000)
    entries = words[:3000] + ["".join(rng.choice(words[:500], size=2))[:3] for _ in range(1000)]
    entries += ["iPhone", "3D", "T恤", "（新）", "。", "ok 猫"]
    seps = ["", "", "", "", "，", "。", " ", "、", "｜"]
    texts = []
    for _ in range(n_texts):
        k = int(rng.integers(1, 20))
        texts.append("".join(w + seps[int(rng.integers(len(seps)))] for w in rng.choice(words, size=k)).strip())
    return list(dict.fromkeys(entries)), texts


@pytest.mark.slow
@pytest.mark.parametrize("make", [english_like, cjk_like])
@pytest.mark.parametrize("compat", [False, True])
def test_backends_equal_reference_on_generated_texts(make, compat):
    rng = np.random.default_rng(0)
    entries, texts = make(rng, 3000)
    texts += texts[:300]  # repeated alt-texts
    ref = reference_match(texts, entries, compat=compat)
    assert sum(map(len, ref)) > 3 * len(texts)
    for backend in BACKENDS:
        assert run(backend, texts, entries, compat=compat) == ref, backend


def test_ngram_chunks_give_the_same_result():
    rng = np.random.default_rng(1)
    entries, texts = english_like(rng, 500)
    m = Matcher(entries, list(range(len(entries))), backend="ngram")
    whole = m.match(texts).lists()
    m._impl.chunk = 50  # code points per chunk: many chunks, texts longer than a chunk
    assert m.match(texts).lists() == whole == reference_match(texts, entries)


def test_ngram_exact_under_hash_collisions():
    """With base 1 every anagram collides: that costs time, never a wrong or missing match."""
    rng = np.random.default_rng(2)
    for make in (english_like, cjk_like):
        entries, texts = make(rng, 200)
        ids = list(range(len(entries)))
        m = Matcher(entries, ids, backend="ngram")
        m._impl = NgramBackend(padded_keys(entries, ids)[0], PyAhoBackend, base=1)
        assert len(m._impl.shadowed) > 0  # keys hidden by a collision are served by the fallback automaton
        assert m.match(texts).lists() == reference_match(texts, entries)


def test_ngram_batch_separator_fallbacks():
    entries = ["a", "b", "\x00", "猫"]
    texts = ["a\x00b", "\uffff\ufffe\x01\x02\x03\x00 a", "猫", "b"]
    for batch in (texts, texts[1:2]):  # no join character free in the batch / in a single text
        assert run("ngram", batch, entries) == naive(batch, entries)
