"""Character classes and tokenizing of MetaCLIP 2's `build_ngram.py`, for building metadata.

Punctuation is ASCII `string.punctuation` plus the CJK marks the reference lists (and `¿`), nothing
else: `«`, `।` or `…` are letters here, as there. Spaced languages (`simple_tokenize`): every
punctuation character and every CJK-or-similar character (the matcher's no-space characters with
`--compat metaclip`: CJK ideographs and radicals, Thai, Lao, Burmese, Khmer, Tibetan) is a token
of its own, whitespace (`str.isspace`) separates the rest. No-space languages: a word segmenter per
whitespace-separated chunk (metadata.segmenters). HTML tags are removed before either.
"""
from __future__ import annotations

import re

from matching.text import ASCII_PUNCTUATION, CJK_PUNCTUATION, NO_SPACE_RANGES, is_no_space_char

PUNCTUATION = ASCII_PUNCTUATION | CJK_PUNCTUATION | {"¿"}
# The reference pairs "『 " (with a space) and "』", so a lone 『 inside a token is not weird there.
PAIRED = (("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"), ("‘", "’"), ("（", "）"), ("【", "】"),
          ("《", "》"), ("〈", "〉"), ("「", "」"), ("『 ", "』"))
_HTML_TAG = re.compile(r"(&lt;.*?&gt;|<.*?>)")


def is_pure_punctuation(s: str) -> bool:
    """True when every character is punctuation (vacuously for "", as the reference)."""
    return all(ch in PUNCTUATION for ch in s)


def is_cjk_or_similar(ch: str) -> bool:
    """The reference's is_cjk_or_similar: a character that is a token by itself in spaced languages."""
    return ch == "¿" or is_no_space_char(ch, compat=True)


def is_weird(token: str) -> bool:
    """The reference's check_weird_token: starts with punctuation or has half of a bracket/quote pair."""
    return token[0] in PUNCTUATION or any((a in token) != (b in token) for a, b in PAIRED)


def remove_html_tags(text: str) -> str:
    """The reference's remove_html_tags: drops `<…>` and `&lt;…&gt;` within a line, shortest first."""
    return _HTML_TAG.sub("", text)


def _class_body() -> str:
    """The inside of a regex class holding every character is_cjk_or_similar accepts."""
    ranges = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in NO_SPACE_RANGES)
    return ranges + re.escape("".join(sorted(PUNCTUATION)))


_SINGLE = _class_body()
_TOKEN = re.compile(f"[{_SINGLE}]|[^\\s{_SINGLE}]+")
_PUNCTUATION_CHAR = re.compile(f"[{re.escape(''.join(sorted(PUNCTUATION)))}]")


def simple_tokenize(text: str) -> list[str]:
    """The reference's simple_tokenizer: CJK-or-similar characters and punctuation alone, the rest
    split on whitespace."""
    return _TOKEN.findall(text)


def simple_token_runs(text: str) -> list[list[str]]:
    """simple_tokenize's tokens in runs that punctuation separates (the tokens that break bigram
    chains in spaced languages, where punctuation tokens are single characters), punctuation dropped."""
    return [_TOKEN.findall(part) for part in _PUNCTUATION_CHAR.split(text)]
