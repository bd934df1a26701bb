"""The ngram backend's two walks (C kernel and numpy) give the same pairs as each other and the reference."""
from __future__ import annotations

import numpy as np
import pytest

from matching import ngram as matching_ngram
from matching.matcher import Matcher, PyAhoBackend, padded_keys, reference_match
from matching.ngram import NgramBackend
from test_matcher import cjk_like, english_like


def test_kernel_is_built():
    """`pip install` compiles matching/_ngram_kernel.c; without it matching silently runs the slower numpy walk."""
    assert matching_ngram._ngram_kernel is not None
    assert Matcher(["a"], [0], backend="ngram")._impl.kernel


def both_walks(entries, texts, compat=False, **kw):
    """Sorted unique (text, key) pairs from the C walk and from the numpy walk of one backend."""
    backend = NgramBackend(padded_keys(entries, list(range(len(entries))), compat)[0], PyAhoBackend, **kw)
    out = []
    for kernel in (True, False):
        backend.kernel = kernel
        t, k = backend.match(texts)
        out.append(np.unique((t.astype(np.int64) << 32) | k.astype(np.int64)))
    return out


@pytest.mark.parametrize("make", [english_like, cjk_like])
@pytest.mark.parametrize("compat", [False, True])
def test_kernel_equals_numpy_walk(make, compat):
    entries, texts = make(np.random.default_rng(3), 2000)
    c_pairs, np_pairs = both_walks(entries, texts, compat)
    assert len(c_pairs) > 3 * len(texts)
    assert np.array_equal(c_pairs, np_pairs)


@pytest.mark.parametrize("kernel", [True, False])
def test_each_walk_equals_reference_with_collisions_and_tiny_chunks(kernel):
    """base=1 makes every anagram collide; 50-code-point chunks split batches everywhere."""
    for make in (english_like, cjk_like):
        entries, texts = make(np.random.default_rng(4), 300)
        ids = list(range(len(entries)))
        m = Matcher(entries, ids, backend="ngram")
        m._impl = NgramBackend(padded_keys(entries, ids)[0], PyAhoBackend, base=1, chunk_code_points=50,
                               kernel=kernel)
        assert m.match(texts).lists() == reference_match(texts, entries)


def test_kernel_walk_batches_and_text_edges():
    """More walks than one batch (64) per text, keys at text starts/ends, empty texts, keys of one code point."""
    entries = ["a", "a a", "a a a", "猫", "猫猫", "c++", ".net", "x"]
    texts = ["a " * 300, "", "猫" * 200, "c++.net", " ", "x", "a"]
    c_pairs, np_pairs = both_walks(entries, texts)
    assert np.array_equal(c_pairs, np_pairs)
    got = Matcher(entries, list(range(len(entries))), backend="ngram").match(texts).lists()
    assert got == reference_match(texts, entries)


def test_kernel_requested_but_missing(monkeypatch):
    monkeypatch.setattr(matching_ngram, "_ngram_kernel", None)
    with pytest.raises(RuntimeError, match="not built"):
        NgramBackend([" a "], PyAhoBackend, kernel=True)
    backend = NgramBackend([" a "], PyAhoBackend)  # falls back to the numpy walk
    assert not backend.kernel and backend.match(["a b"])[1].tolist() == [0]
