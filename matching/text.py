"""The text rules of matching, as MetaCLIP 2's substr_matching.py: strip, spacing, entry padding.

Imports nothing of this project (the leaf every matcher user and metadata's title counting share).

- `strip` / `nonempty` / `nonblank`: Python's `str.strip()` on Arrow string arrays, columnar (no
  per-row Python objects); it trims exactly the characters `str.isspace()` accepts (PY_WHITESPACE),
  not Arrow's or DuckDB's trim sets.
- `spacing(text)`: " " + text + " ", each of PUNCT_TO_WRAP wrapped in spaces, CHARS_TO_SPACE to spaces.
- `pad_entry(entry)`: a leading space unless the first character is a no-space character, a trailing
  space unless the last one is. No-space characters (`is_no_space_char`): NO_SPACE_RANGES (CJK
  ideographs and radicals, Thai, Lao, Burmese, Khmer, Tibetan), ASCII and CJK punctuation, and, unless
  `compat` (the reference exactly), Hiragana/Katakana (KANA_RANGES).
"""
from __future__ import annotations

import functools
import string

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# every character `str.isspace()` accepts (tests/matching/test_text.py recomputes it over all of Unicode;
# computing it here cost ~0.5 s of every command's start-up)
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
PUNCT_TO_WRAP = (",", ".", ";", ":", "?", "!", "`")
CHARS_TO_SPACE = ("\t", "\n", "\r")
CJK_PUNCTUATION = frozenset("，。、；：？！“”‘’（）【】《》〈〉「」『』～—")
ASCII_PUNCTUATION = frozenset(string.punctuation)
NO_SPACE_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF), (0x2E80, 0x2EFF), (0x2F00, 0x2FDF),
    (0x2FF0, 0x2FFF),  # CJK ideographs, compatibility ideographs, radicals, description characters
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF),  # Thai Lao Burmese Khmer
    (0x0F00, 0x0FFF),  # Tibetan
)
KANA_RANGES = ((0x3040, 0x30FF), (0xFF66, 0xFF9F))


def strip(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`str.strip()` of every value (nulls stay null): trims exactly the characters `str.isspace()` accepts."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.utf8_trim(values, characters=PY_WHITESPACE)


def nonempty(values: pa.Array) -> np.ndarray:
    """bool per value: not null and not ""."""
    return pc.fill_null(pc.greater(pc.utf8_length(values), 0), False).to_numpy(zero_copy_only=False)


def nonblank(values: pa.Array) -> np.ndarray:
    """bool per value: not null and not empty after `str.strip()`."""
    return nonempty(strip(values))


@functools.lru_cache(maxsize=1 << 16)  # padding 500k entries asks about few distinct characters
def is_no_space_char(ch: str, compat: bool = False) -> bool:
    """True when an entry may touch this character without a space (reference: is_cjk_or_similar)."""
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in NO_SPACE_RANGES):
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
