"""Substring matching of alt-texts against metadata entries, exactly as MetaCLIP 2's substr_matching.py.

Text: `str.strip()`, then `spacing` (pad with spaces, wrap , . ; : ? ! ` in spaces, tabs/newlines to
spaces). Entry: a leading space unless its first character is a no-space character (CJK, Thai, Lao,
Burmese, Khmer, Tibetan, ASCII/CJK punctuation), a trailing space unless its last one is. A text
matches an entry when the spaced entry is a substring of the spaced text. Fixed mode also treats
Hiragana/Katakana as no-space characters (the reference pads kana-initial entries, which then never
match); `compat=True` reproduces the reference exactly.

`Matcher.match` returns matches as arrays (Arrow-style offsets + sorted unique entry ids per text).
Backends (BACKENDS) all give the same sets: "ngram" (vectorised hash lookups, matching.ngram; the
default), "ahocorasick_rs" (one batched automaton scan) and "pyahocorasick" (one automaton walk per
text, the reference loop). The reference's per-match Python objects are its bottleneck, so the fast
backends produce (text, key) index arrays and deduplicate repeated texts before matching.
`reference_match` is the reference loop itself, kept as the oracle for tests and benchmarks.
The text rules themselves (`spacing`, `pad_entry`, the no-space characters) live in matching.text.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Sequence

import ahocorasick  # pyahocorasick: the reference backend and the ngram backend's collision fallback
import ahocorasick_rs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:
    from matching import _ngram_kernel
except ImportError:  # built without a C compiler: numpy does the grouping (same results)
    _ngram_kernel = None

from matching.ngram import NgramBackend
from matching.text import is_no_space_char, pad_entry, spacing


@dataclass(frozen=True)
class MatchResult:
    """Matches of a batch of texts: entry_ids[offsets[i]:offsets[i+1]] are text i's, sorted and unique."""

    offsets: np.ndarray  # int64, len(texts) + 1
    entry_ids: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lists(self) -> list[list[int]]:
        return [self.entry_ids[a:b].tolist() for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def reference_automaton(entries: Sequence[str], entry_ids: Sequence[int] | None = None, compat: bool = False):
    """MetaCLIP's automaton: every padded entry added with (entry id, key) as its value."""
    ids = range(len(entries)) if entry_ids is None else entry_ids
    automaton = ahocorasick.Automaton()
    for idx, entry in zip(ids, entries):
        key = pad_entry(entry, compat)
        automaton.add_word(key, (int(idx), key))
    if len(automaton):
        automaton.make_automaton()
    return automaton


def reference_loop(automaton, texts: Sequence[str]) -> list[list[int]]:
    """MetaCLIP's loop: one `iter` per spaced text, a Python set per text."""
    if len(automaton) == 0:
        return [[] for _ in texts]
    out: list[list[int]] = []
    for text in texts:
        found = set()
        for _, (eid, _) in automaton.iter(spacing(text)):
            found.add(eid)
        out.append(sorted(found))
    return out


def reference_match(texts: Sequence[str], entries: Sequence[str], entry_ids: Sequence[int] | None = None,
                    compat: bool = False) -> list[list[int]]:
    """The reference algorithm end to end (the oracle for tests and benchmarks)."""
    return reference_loop(reference_automaton(entries, entry_ids, compat), texts)


BACKENDS = ("ngram", "ahocorasick_rs", "pyahocorasick")
AUTO_BACKEND = "ngram"  # fastest measured on English and CJK-heavy metadata (BENCHMARKS.md, Matching)


def padded_keys(entries: Sequence[str] | pa.Array | pa.ChunkedArray, entry_ids: Sequence[int] | pa.Array,
                compat: bool = False) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct padded keys (first-seen order), and the entry ids of key k: ids[offsets[k]:offsets[k+1]]
    (ascending).

    Several entries may pad to the same key (duplicates with different ids); empty entries never match.
    Columnar (Arrow): the padding is decided once per distinct first/last character; entries that are
    not UTF-8 (lone surrogates) take the per-entry path, with the same result.
    """
    try:
        arr = entries if isinstance(entries, (pa.Array, pa.ChunkedArray)) else pa.array(list(entries), pa.string())
    except (ValueError, TypeError, pa.ArrowException):
        return _padded_keys_py(entries, entry_ids, compat)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    ids = np.asarray(entry_ids, dtype=np.int64)  # a list, numpy or Arrow array
    keep = pc.fill_null(pc.greater(pc.binary_length(arr), 0), False).to_numpy(zero_copy_only=False)
    arr, ids = arr.filter(pa.array(keep)), ids[keep]
    pads = pa.array(["", " "], pa.string())

    def pad(ends: pa.Array) -> pa.Array:  # " " where the end character is not a no-space character
        enc = ends.dictionary_encode()
        lut = np.array([not is_no_space_char(c, compat) for c in enc.dictionary.to_pylist()], dtype=np.int8)
        return pads.take(pa.array(lut[enc.indices.to_numpy()] if len(lut) else np.zeros(0, np.int8)))

    padded = pc.binary_join_element_wise(pad(pc.utf8_slice_codeunits(arr, 0, 1)), arr,
                                         pad(pc.utf8_slice_codeunits(arr, -1)), "")
    enc = padded.dictionary_encode()
    key = enc.indices.to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(enc.dictionary) + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=len(enc.dictionary)), out=offsets[1:])
    return enc.dictionary.to_pylist(), offsets, ids[np.lexsort((ids, key))].astype(np.int32)


def _padded_keys_py(entries: Sequence[str], entry_ids: Sequence[int], compat: bool
                    ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """padded_keys one entry at a time (any str, lone surrogates included)."""
    table: dict[str, list[int]] = {}
    for eid, entry in zip(entry_ids, entries):
        if entry:
            table.setdefault(pad_entry(entry, compat), []).append(int(eid))
    offsets = np.zeros(len(table) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in table.values()], out=offsets[1:])
    ids = np.fromiter((e for v in table.values() for e in sorted(v)), dtype=np.int32, count=int(offsets[-1]))
    return list(table), offsets, ids


def pairs_to_result(n_texts: int, text: np.ndarray, key: np.ndarray, key_offsets: np.ndarray,
                    key_ids: np.ndarray) -> MatchResult:
    """(text, key) match pairs (any order, repeats allowed) -> sorted unique entry ids per text."""
    if len(key_ids) == len(key_offsets) - 1 and _ngram_kernel is not None:  # one entry id per key: in C
        offsets, ids = _ngram_kernel.group(np.ascontiguousarray(text, dtype=np.int32),
                                           np.ascontiguousarray(key, dtype=np.int32), key_ids, n_texts)
        return MatchResult(np.frombuffer(offsets, dtype=np.int64), np.frombuffer(ids, dtype=np.int32))
    if len(key_ids) == len(key_offsets) - 1:  # the usual case: one entry id per key (key k -> key_ids[k])
        ids = key_ids[key]
    else:
        count = key_offsets[key + 1] - key_offsets[key]
        text = np.repeat(text, count)
        ids = key_ids[np.repeat(key_offsets[key] - np.cumsum(count) + count, count) + np.arange(int(count.sum()))]
    # stable = timsort: backends emit pairs in runs ordered by text, which it merges far faster
    combined = np.sort((text.astype(np.int64) << 32) | ids.astype(np.int64), kind="stable")
    if len(combined):
        combined = combined[np.r_[True, combined[1:] != combined[:-1]]]
    offsets = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(combined >> 32, minlength=n_texts), out=offsets[1:])
    return MatchResult(offsets, combined.astype(np.int32))  # the low 32 bits: the entry id


class PyAhoBackend:
    """One pyahocorasick `iter` per spaced text, as the reference loop (the simple backend)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._automaton = ahocorasick.Automaton()
        for k, key in enumerate(keys):
            self._automaton.add_word(key, k)
        self._empty = len(keys) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def match(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All (text index, key index) pairs."""
        if self._empty:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        it = self._automaton.iter
        lists = [{k for _, k in it(spacing(t))} for t in texts]
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        keys = np.fromiter((k for found in lists for k in found), dtype=np.int64, count=int(counts.sum()))
        return np.repeat(np.arange(len(texts), dtype=np.int64), counts), keys


class RsAhoBackend:
    """ahocorasick-rs (overlapping, standard match kind) over a whole batch of spaced texts at once.

    Texts are joined by a character that no key contains, so no match spans two texts; matches come
    back as (key, start, end) tuples and are turned into arrays in one pass. Strings that UTF-8 cannot
    encode (lone surrogates, never in Arrow data) go to a pyahocorasick automaton instead.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = list(keys)
        self._slow: PyAhoBackend | None = None
        used = set().union(*map(set, keys)) if keys else set()
        self._sep = next(c for c in ("\x00", "\uffff", "\ufffe", *map(chr, range(0xE000, 0xF900)))
                         if c not in used)
        try:
            self._automaton = ahocorasick_rs.AhoCorasick(self._keys, matchkind=ahocorasick_rs.MatchKind.Standard) \
                if keys else None
        except UnicodeEncodeError:
            self._automaton, self._slow = None, PyAhoBackend(keys)

    def match(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All (text index, key index) pairs."""
        if self._slow is not None:
            return self._slow.match(texts)
        if self._automaton is None or not texts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        spaced = [spacing(t) for t in texts]
        starts = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(np.fromiter(map(len, spaced), dtype=np.int64, count=len(spaced))[:-1] + 1, out=starts[1:])
        try:
            found = self._automaton.find_matches_as_indexes(self._sep.join(spaced), overlapping=True)
        except UnicodeEncodeError:
            return PyAhoBackend(self._keys).match(texts)
        flat = np.fromiter(chain.from_iterable(found), dtype=np.int64, count=3 * len(found)).reshape(-1, 3)
        return np.searchsorted(starts, flat[:, 1], side="right") - 1, flat[:, 0]


def _lists_to_result(lists: Sequence[Sequence[int]]) -> MatchResult:
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((e for x in lists for e in x), dtype=np.int32, count=int(offsets[-1]))
    return MatchResult(offsets, flat)


def dedup(texts: Sequence[str]) -> tuple[list[str], np.ndarray | None]:
    """Distinct texts (first-seen order) and each text's index among them; None when all are distinct."""
    first = dict.fromkeys(texts)
    if len(first) == len(texts):
        return list(texts), None
    index = {t: i for i, t in enumerate(first)}
    return list(first), np.fromiter(map(index.__getitem__, texts), dtype=np.int64, count=len(texts))


def expand(result: MatchResult, inverse: np.ndarray) -> MatchResult:
    """Per-text results from per-distinct-text results: text i gets result[inverse[i]]."""
    counts = np.diff(result.offsets)[inverse]
    offsets = np.zeros(len(inverse) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    src = np.repeat(result.offsets[inverse] - offsets[:-1], counts) + np.arange(int(offsets[-1]))
    return MatchResult(offsets, result.entry_ids[src])


class Matcher:
    """Matches texts of one language against that language's entries.

    entries/entry_ids: the language's metadata (entry_ids global, from entries.parquet).
    backend: "ngram" (vectorised hashing, matching.ngram), "ahocorasick_rs" (batched automaton),
    "pyahocorasick" (one automaton walk per text, the reference loop) or "auto" (AUTO_BACKEND).
    All give identical results: the SET of entries whose padded form occurs in the spaced text.
    The fast backends match each distinct text once (web alt-texts repeat a lot).
    """

    def __init__(self, entries: Sequence[str], entry_ids: Sequence[int], *, compat: bool = False,
                 backend: str = "auto") -> None:
        if backend not in ("auto", *BACKENDS):
            raise ValueError(f"unknown matcher backend {backend!r}; choose auto or one of {', '.join(BACKENDS)}")
        self.backend = AUTO_BACKEND if backend == "auto" else backend
        self.compat = compat
        keys, self._key_offsets, self._key_ids = padded_keys(entries, entry_ids, compat)
        if self.backend == "ngram":
            self._impl = NgramBackend(keys, PyAhoBackend)
        elif self.backend == "ahocorasick_rs":
            self._impl = RsAhoBackend(keys)
        else:
            self._impl = PyAhoBackend(keys)

    @property
    def implementation(self) -> str:
        """The backend, and for ngram which walk runs: "ngram (C kernel)" or "ngram (numpy walk)"."""
        if self.backend != "ngram":
            return self.backend
        return "ngram (C kernel)" if self._impl.kernel else "ngram (numpy walk)"

    def match(self, texts: Sequence[str]) -> MatchResult:
        """Match already-stripped texts; returns sorted unique entry ids per text.

        With the C kernel, the texts go through Arrow (one UTF-8 copy; dedup and spacing then run in C++/C,
        faster than a dict and Python strings); texts that are not UTF-8 (lone surrogates) stay in Python."""
        texts = list(texts)
        if getattr(self._impl, "kernel", False) and texts:
            try:
                arr = pa.array(texts, pa.string())
            except (ValueError, TypeError, pa.ArrowException):
                arr = None
            if arr is not None and not arr.null_count:
                return self.match_array(arr)
        inverse = None
        if self.backend != "pyahocorasick":
            texts, inverse = dedup(texts)
        text, key = self._impl.match(texts)
        result = pairs_to_result(len(texts), text, key, self._key_offsets, self._key_ids)
        return result if inverse is None else expand(result, inverse)

    def match_array(self, texts: pa.Array) -> MatchResult:
        """match() of an Arrow string array; repeated texts are folded by Arrow's dictionary encoding
        (first-seen order, as `dedup`), so only distinct texts become Python strings."""
        if self.backend == "pyahocorasick":
            return self.match(texts.to_pylist())
        enc = texts.dictionary_encode()
        distinct = enc.dictionary
        utf8 = utf8_buffers(distinct) if getattr(self._impl, "kernel", False) else None
        if utf8 is not None:  # spaced in C straight from the Arrow buffers
            text, key = self._impl.match_utf8(*utf8, distinct.to_pylist)
        else:
            text, key = self._impl.match(distinct.to_pylist())
        result = pairs_to_result(len(distinct), text, key, self._key_offsets, self._key_ids)
        return result if len(distinct) == len(texts) else expand(result, enc.indices.to_numpy())


def utf8_buffers(arr: pa.Array) -> tuple[object, np.ndarray] | None:
    """(UTF-8 data buffer, int64 offsets) of a non-empty, null-free string or large_string array; else None."""
    if not len(arr) or arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    _, off, data = arr.buffers()
    width = np.int32 if pa.types.is_string(arr.type) else np.int64
    offsets = np.frombuffer(off, dtype=width)[arr.offset: arr.offset + len(arr) + 1].astype(np.int64)
    return (data if data is not None else b""), offsets
