"""`curate metadata add`: import a user's entry list into META for one language.

Accepted files (UTF-8, an optional BOM is ignored):
- MetaCLIP 1's `metadata.json` or any JSON list of strings (entry order kept);
- a JSON object whose keys are the entries (MetaCLIP 2's per-language metadata files);
- plain text with one entry per line (`\\n` or `\\r\\n` line ends).

Blank lines and entries with leading/trailing whitespace or control characters are skipped, counted
and reported with the first place they occur; duplicates (inside the file or already in META for
that language) are skipped and counted. A missing, empty or non-UTF-8 file, a JSON file that does not
parse or holds something other than strings is a one-line error naming the file and line/element.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from core.errors import UserError
from core.outputs import content_hash
from metadata.languages import check_lang
from metadata.store import AppendSummary, Block, append, entry_problem

_SOURCE = re.compile(r"[a-z][a-z0-9_]*")


def _decode(path: Path) -> str:
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file")
    data = path.read_bytes()
    if not data.strip():
        raise UserError(f"{path}: file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}): "
                        "save the file as UTF-8") from e
    return text.removeprefix("\ufeff")


def _json_entries(path: Path, value: object) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        items = list(value.keys())
    elif isinstance(value, list):
        items = value
    else:
        raise UserError(f"{path}: JSON holds a {type(value).__name__}: expected a list of strings "
                        "(MetaCLIP 1 metadata.json) or an object keyed by entry")
    out = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise UserError(f"{path}: element {i} is {json.dumps(item)[:40]} ({type(item).__name__}): "
                            "expected a string")
        out.append((item, f"element {i}"))
    return out


def read_entries(path: str | Path, fmt: str = "auto") -> list[tuple[str, str]]:
    """(entry, where) pairs of a file in file order, before any checks; `fmt` is auto, json or lines."""
    path = Path(path)
    text = _decode(path)
    looks_json = text.lstrip()[:1] in ("[", "{")
    if fmt == "json" or (fmt == "auto" and (looks_json or path.suffix.lower() == ".json")):
        try:
            return _json_entries(path, json.loads(text))
        except json.JSONDecodeError as e:
            if fmt == "json" or path.suffix.lower() == ".json":
                raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}); "
                                "use --format lines for one entry per line") from e
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(line.removesuffix("\r"), f"line {i}") for i, line in enumerate(lines, 1)]


def check_entries(path: str | Path, pairs: list[tuple[str, str]]) -> tuple[list[str], Counter, dict[str, str]]:
    """Entries that can be metadata, skip counts by reason, and the first place of each reason."""
    kept: list[str] = []
    skipped: Counter = Counter()
    first: dict[str, str] = {}
    for entry, where in pairs:
        problem = entry_problem(entry)
        if problem is None:
            kept.append(entry)
        else:
            skipped[problem] += 1
            first.setdefault(problem, f"{path} {where}")
    if not kept:
        reasons = ", ".join(f"{n} {r}" for r, n in skipped.items()) or "none at all"
        raise UserError(f"{path}: no usable entries ({reasons})")
    return kept, skipped, first


def add(out: str, lang: str, file: str, source: str = "user", fmt: str = "auto") -> tuple[AppendSummary, Counter, dict]:
    """Append the entries of `file` to META `out` as language `lang` and source `source`."""
    check_lang(lang)
    if not _SOURCE.fullmatch(source):
        raise UserError(f"--source {source!r}: use lower-case letters, digits and _ (e.g. user, metaclip1)")
    path = Path(file)
    pairs = read_entries(path, fmt)
    entries, skipped, first = check_entries(path, pairs)
    record = {
        "command": "add",
        "langs": [lang],
        "sources": {source: {"file": str(path.resolve()), "sha256": content_hash(path)}},
        "skipped": {lang: {source: dict(skipped)}} if skipped else {},
    }
    summary = append(out, [Block(lang, source, entries)], record)
    return summary, skipped, first
