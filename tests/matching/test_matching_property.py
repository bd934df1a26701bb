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


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(text, max_size=8))
def test_kernel_spacing_equals_spacing(texts):
    """The C kernel's spacing (of str lists and of Arrow UTF-8 buffers) = `spacing` of each text."""
    import numpy as np
    import pyarrow as pa

    from matching.matcher import utf8_buffers
    from matching.ngram import SEPARATOR, _ngram_kernel

    got = np.frombuffer(_ngram_kernel.space_str(list(texts)), dtype=np.uint32)
    want = np.concatenate([np.append(np.array([ord(c) for c in spacing(t)], dtype=np.uint32), SEPARATOR)
                           for t in texts]) if texts else np.zeros(0, dtype=np.uint32)
    assert np.array_equal(got, want)
    if texts:
        arr = pa.array(["x"] + texts, pa.string()).slice(1)  # a sliced array: offsets start past 0
        data, offsets = utf8_buffers(arr)
        assert np.array_equal(np.frombuffer(_ngram_kernel.space_utf8(data, offsets), dtype=np.uint32), want)


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(st.one_of(entry, st.just("")), max_size=12), compat=st.booleans(), data=st.data())
def test_columnar_padded_keys_equal_per_entry(entries, compat, data):
    """padded_keys over Arrow = the per-entry dict version (keys in first-seen order, ids ascending per key)."""
    import numpy as np
    import pyarrow as pa

    from matching.matcher import _padded_keys_py, padded_keys

    entries = entries + data.draw(st.lists(st.sampled_from(entries), max_size=4)) if entries else entries  # repeats
    ids = data.draw(st.permutations(range(len(entries))))
    want = _padded_keys_py(entries, ids, compat)
    for got in (padded_keys(entries, ids, compat), padded_keys(pa.array(entries, pa.string()), pa.array(ids), compat)):
        assert got[0] == want[0]
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2])


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9)), max_size=60), data=st.data())
def test_kernel_grouping_equals_numpy(pairs, data):
    """The C grouping of (text, key) pairs = the numpy sort/unique (one entry id per key)."""
    import numpy as np

    from matching import matcher as matching

    key_ids = np.array(data.draw(st.permutations(range(100, 110))), dtype=np.int32)
    key_offsets = np.arange(11, dtype=np.int64)
    text = np.array([p[0] for p in pairs], dtype=np.int32)
    key = np.array([p[1] for p in pairs], dtype=np.int32)
    got = matching.pairs_to_result(7, text, key, key_offsets, key_ids)
    kernel, matching._ngram_kernel = matching._ngram_kernel, None
    try:
        want = matching.pairs_to_result(7, text, key, key_offsets, key_ids)
    finally:
        matching._ngram_kernel = kernel
    assert kernel is not None and got.lists() == want.lists()
    assert got.lists() == [sorted({int(key_ids[k]) for t, k in pairs if t == i}) for i in range(7)]


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.lists(piece, min_size=1, max_size=4).map("".join), max_size=10))
def test_token_keys_columnar(keys):
    from matching.ngram import _is_token_key, _token_keys, code_points

    assert _token_keys(*code_points(keys)).tolist() == [_is_token_key(k) for k in keys]
