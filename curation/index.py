"""INDEX, the output of `curate build-index` and the input of `curate balance`: the contract, stated once.

  matches/part-NNNNN.parquet  matched texts of part NNNNN only (MATCH_SCHEMA: uid, text, url, lang,
                              entry_ids sorted unique list<int32>, source, row, key), schema metadata
                              FINGERPRINT_KEY = content hash of the entries.parquet matched against
  counts/part-NNNNN.npz       sparse per-entry counts of that part (entry_id int32, count int64), so
                              counts.parquet is summed without re-reading matches
  parts.jsonl                 journal: one line per finished part, appended by the driver only after
                              both files of the part are in place (object stores: parts.journal/
                              part-NNNNN.json, one object per finished part)
  entries.parquet             a copy of META's entries (entry_id, lang, entry, source)
  counts.parquet              entry_id, lang, entry, count: c_e = texts that matched entry e (int64 >= 0)
  manifest.json               identity (inputs with fingerprints, metadata fingerprint, options), backend,
                              totals, per_lang, errors, parts; "complete": true once counts.parquet is in
                              place (written with complete: false at the start of a run)
Every file is written whole or not at all (core.storage). A part is finished when the journal lists it
and both its files exist; build-index (curation.build_index_run) resumes from that. balance opens an
INDEX with `open_index`: complete, every listed part present and readable with MATCH_COLUMNS, every
part matched against the entries.parquet beside it, integer non-negative counts.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from core import storage
from core.errors import UserError

MATCH_SCHEMA = pa.schema([
    ("uid", pa.string()), ("text", pa.string()), ("url", pa.string()), ("lang", pa.string()),
    ("entry_ids", pa.list_(pa.int32())), ("source", pa.string()), ("row", pa.int64()), ("key", pa.string()),
])
MATCH_COLUMNS = MATCH_SCHEMA.names
FINGERPRINT_KEY = b"worldclip.metadata_fingerprint"
MATCH_PARQUET = {"compression": "zstd", "compression_level": 1, "use_dictionary": ["lang", "source"],  # BENCHMARKS.md
                 "write_statistics": ["lang", "source", "row"]}  # min/max of texts, uids, urls: costly, unused
PART_SIZE = 50_000  # rows per part of Parquet/img2dataset pools: build-index's unit of work and of resume
INDEX_FILES = ("matches", "counts", "parts.jsonl", "parts.journal", "entries.parquet", "counts.parquet",
               "manifest.json")


def part_name(part: int) -> str:
    return f"part-{part:05d}"


def write_part(index: str | Path, part: int, matches: pa.Table, counts: np.ndarray) -> None:
    """Put a part's counts and matches in place, each whole or not at all (core.storage)."""
    nz = np.flatnonzero(counts)
    buf = io.BytesIO()
    np.savez(buf, entry_id=nz.astype(np.int32), count=counts[nz])
    storage.write_bytes(storage.join(index, "counts", f"{part_name(part)}.npz"), buf.getvalue())
    storage.write_parquet(storage.join(index, "matches", f"{part_name(part)}.parquet"), matches, **MATCH_PARQUET)


def add_part_counts(index: str | Path, part: int, counts: np.ndarray) -> None:
    """Add one finished part's counts into the dense int64 `counts` (no dense array per part)."""
    with np.load(io.BytesIO(storage.read_bytes(storage.join(index, "counts", f"{part_name(part)}.npz")))) as z:
        counts[z["entry_id"]] += z["count"]  # a part's entry ids are distinct


def write_counts(index: str | Path, entries: pa.Table, counts: np.ndarray) -> None:
    """counts.parquet: META's entries (entry_id, lang, entry) with their count."""
    storage.write_parquet(storage.join(index, "counts.parquet"),
                          entries.append_column("count", pa.array(counts, pa.int64())))


def match_files(index: str | Path) -> list[str]:
    """The INDEX's matches/part-*.parquet files (paths or URLs), sorted."""
    folder = storage.join(index, "matches")
    if not storage.isdir(folder):
        return []
    return [u for u in storage.list_files(folder)
            if storage.parent(u) == storage.normalize(folder) and storage.name(u).startswith("part-")
            and u.endswith(".parquet")]


def read_matches(index: str | Path) -> pa.Table:
    """All matches of an INDEX (for tests and small pools)."""
    tables = []
    for f in match_files(index):
        tables.append(storage.read_parquet(f))
    return pa.concat_tables(tables) if tables else MATCH_SCHEMA.empty_table()


@dataclass
class Index:
    """An INDEX checked by open_index: its manifest, part files, metadata fingerprint, counts and matched rows."""

    path: str
    manifest: dict
    parts: list[str]
    fingerprint: str
    counts: pa.Table
    rows: int


def open_index(path: str | Path) -> Index:
    """Check an INDEX folder (complete, all parts present, one metadata version) and load its counts."""
    with storage.errors(path, "--index"):
        return _open_index(storage.normalize(path))


def _open_index(path: str) -> Index:
    if not storage.exists(storage.join(path, "manifest.json")):
        raise UserError(f"{path} is not an INDEX: no manifest.json (make one with `curate build-index`)")
    manifest = storage.read_json(storage.join(path, "manifest.json"))
    if "complete" not in manifest and storage.exists(storage.join(path, "entries.parquet")):
        raise UserError(f"{path} is a META folder (metadata entries), not an INDEX: make an INDEX with "
                        "`curate build-index --metadata META --pool … --out INDEX` and pass that to --index")
    if not manifest.get("complete"):
        raise UserError(f"INDEX {path} is incomplete (manifest.json complete=false): "
                        "rerun the same `curate build-index` command to finish it")
    listed = manifest.get("parts") or {}
    names = sorted(listed) if isinstance(listed, dict) else sorted(str(x) for x in listed)
    parts = [storage.join(path, "matches", n if n.endswith(".parquet") else f"{n}.parquet") for n in names]
    present = set(storage.list_files(storage.join(path, "matches"))) if storage.isdir(storage.join(path, "matches")) \
        else set()
    missing = [p for p in parts if p not in present]
    if missing:
        raise UserError(f"INDEX {path} lists {len(missing)} part(s) that are missing, e.g. {missing[0]}: "
                        "rerun `curate build-index` on it to redo them")
    for name in ("entries.parquet", "counts.parquet"):
        if not storage.exists(storage.join(path, name)):
            raise UserError(f"INDEX {path} has no {name}: rerun `curate build-index` to finish it")
    fingerprint = storage.content_hash(storage.join(path, "entries.parquet"))
    rows = 0
    for p in parts:
        try:
            f = storage.parquet_file(p)
            meta, schema = f.metadata, f.schema_arrow
        except (OSError, pa.ArrowException) as e:
            raise UserError(f"{p}: not a readable Parquet file ({e}); rerun `curate build-index --overwrite`") from e
        if absent := [c for c in MATCH_COLUMNS if c not in schema.names]:
            raise UserError(f"{p}: not an INDEX part, no column(s) {', '.join(absent)}; columns found: "
                            f"{', '.join(schema.names)}")
        found = (schema.metadata or {}).get(FINGERPRINT_KEY, b"").decode()
        if found != fingerprint:
            raise UserError(f"INDEX from another metadata version: {p} was matched against metadata "
                            f"{found[:12] or '(none)'}… but {storage.join(path, 'entries.parquet')} is "
                            f"{fingerprint[:12]}…; rebuild the INDEX with `curate build-index --overwrite`")
        rows += meta.num_rows
    counts = read_counts(storage.join(path, "counts.parquet"))
    return Index(path, manifest, parts, fingerprint, counts, rows)


def read_counts(path: str) -> pa.Table:
    """counts.parquet as written by build-index: integer, non-negative counts (NaN/inf/negative refused)."""
    counts = storage.read_parquet(path, columns=["entry_id", "lang", "count"])
    col = counts.column("count")
    if not pa.types.is_integer(col.type):
        raise UserError(f"{path}: column 'count' is {col.type}, expected integers as build-index writes them "
                        "(NaN/inf counts are not counts); rebuild the INDEX with `curate build-index --overwrite`")
    c = col.to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(c < 0)
    if len(bad):
        raise UserError(f"{path}: row {int(bad[0])}: negative count {int(c[bad[0]])}; rebuild the INDEX with "
                        "`curate build-index --overwrite`")
    return counts.set_column(2, "count", col.cast(pa.int64()))
