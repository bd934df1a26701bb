"""Substring matching of alt-texts against metadata entries, exactly as MetaCLIP 2's substr_matching.py.

Text: `str.strip()`, then `spacing` (pad with spaces, wrap , . ; : ? ! ` in spaces, tabs/newlines to
spaces). Entry: a leading space unless its first character is a no-space character (CJK, Thai, Lao,
Burmese, Khmer, Tibetan, ASCII/CJK punctuation), a trailing space unless its last one is. A text
matches an entry when the spaced entry is a substring of the spaced text. Fixed mode also treats
Hiragana/Katakana as no-space characters (the reference pads kana-initial entries, which then never
match); `compat=True` reproduces the reference exactly.

`Matcher.match` returns matches as arrays (Arrow-style offsets + sorted unique entry ids per text).
`reference_match` is the reference loop itself, kept as the oracle for tests and benchmarks.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Sequence

import numpy as np

PUNCT_TO_WRAP = (",", ".", ";", ":", "?", "!", "`")
CHARS_TO_SPACE = ("\t", "\n", "\r")
CJK_PUNCTUATION = frozenset("，。、；：？！“”‘’（）【】《》〈〉「」『』～—")
ASCII_PUNCTUATION = frozenset(string.punctuation)

_NO_SPACE_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF), (0x2E80, 0x2EFF), (0x2F00, 0x2FDF),
    (0x2FF0, 0x2FFF),  # CJK ideographs, compatibility ideographs, radicals, description characters
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x0F00, 0x0FFF),  # Thai Lao Burmese Khmer Tibetan
)
KANA_RANGES = ((0x3040, 0x30FF), (0xFF66, 0xFF9F))


def is_no_space_char(ch: str, compat: bool = False) -> bool:
    """True when an entry may touch this character without a space (reference: is_cjk_or_similar)."""
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in _NO_SPACE_RANGES):
        return True
    if ch in ASCII_PUNCTUATION or ch in CJK_PUNCTUATION:
        return True
    return not compat and any(lo <= cp <= hi for lo, hi in KANA_RANGES)


def spacing(text: str) -> str:
    """The reference `spacing`: pad, wrap punctuation in spaces, turn tabs/newlines into spaces."""
    spaced = f" {text} "
    for p in PUNCT_TO_WRAP:
        spaced = spaced.replace(p, f" {p} ")
    for c in CHARS_TO_SPACE:
        spaced = spaced.replace(c, " ")
    return spaced


def pad_entry(entry: str, compat: bool = False) -> str:
    """The reference `get_spaced_metadata` for one (non-empty) entry."""
    if not is_no_space_char(entry[0], compat):
        entry = " " + entry
    if not is_no_space_char(entry[-1], compat):
        entry = entry + " "
    return entry


@dataclass(frozen=True)
class MatchResult:
    """Matches of a batch of texts: entry_ids[offsets[i]:offsets[i+1]] are text i's, sorted and unique."""

    offsets: np.ndarray  # int64, len(texts) + 1
    entry_ids: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lists(self) -> list[list[int]]:
        return [self.entry_ids[a:b].tolist() for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def reference_match(texts: Sequence[str], entries: Sequence[str], entry_ids: Sequence[int] | None = None,
                    compat: bool = False) -> list[list[int]]:
    """MetaCLIP's loop: one pyahocorasick `iter` per spaced text, a Python set per text (the oracle)."""
    import ahocorasick

    ids = range(len(entries)) if entry_ids is None else entry_ids
    automaton = ahocorasick.Automaton()
    for idx, entry in zip(ids, entries):
        key = pad_entry(entry, compat)
        automaton.add_word(key, (int(idx), key))
    out: list[list[int]] = []
    if len(automaton) == 0:
        return [[] for _ in texts]
    automaton.make_automaton()
    for text in texts:
        found = set()
        for _, (eid, _) in automaton.iter(spacing(text)):
            found.add(eid)
        out.append(sorted(found))
    return out


def _lists_to_result(lists: Sequence[Sequence[int]]) -> MatchResult:
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((e for x in lists for e in x), dtype=np.int32, count=int(offsets[-1]))
    return MatchResult(offsets, flat)


class Matcher:
    """Matches texts of one language against that language's entries.

    entries/entry_ids: the language's metadata (entry_ids global, from entries.parquet).
    Several entries may pad to the same key (e.g. "a" and "a " never, but duplicates across sources
    are removed at metadata build); each key maps to every entry id that produced it.
    """

    def __init__(self, entries: Sequence[str], entry_ids: Sequence[int], *, compat: bool = False,
                 backend: str = "auto") -> None:
        import ahocorasick

        if backend not in ("auto", "pyahocorasick"):
            raise ValueError(f"unknown matcher backend {backend!r}")
        self.backend = "pyahocorasick"
        self.compat = compat
        keys: dict[str, list[int]] = {}
        for eid, entry in zip(entry_ids, entries):
            if entry:
                keys.setdefault(pad_entry(entry, compat), []).append(int(eid))
        self._automaton = ahocorasick.Automaton()
        for key, ids in keys.items():
            self._automaton.add_word(key, tuple(ids))
        self._empty = len(keys) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def match(self, texts: Sequence[str]) -> MatchResult:
        """Match already-stripped texts; returns sorted unique entry ids per text."""
        if self._empty:
            return MatchResult(np.zeros(len(texts) + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))
        it = self._automaton.iter
        lists = []
        for text in texts:
            found = set()
            for _, ids in it(spacing(text)):
                found.update(ids)
            lists.append(sorted(found))
        return _lists_to_result(lists)
