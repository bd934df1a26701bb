"""The META folder: `entries.parquet` (entry_id, lang, entry, source) and `manifest.json`.

entry_id is int32, dense 0..N-1 in file order and global across languages; (lang, entry) is unique;
entries are exact strings (case kept, no normalisation). Appending never changes an existing id:
new entries get the next ids, in the order they were given.

Commit protocol (no half-written META): under `output_lock(META)` the new `entries.parquet` and
`manifest.json` are written and fsynced in `META/.tmp-<random>/`, then renamed into place,
entries first, manifest last. The manifest records the sha256 of the entries file it describes, so
a reader always knows whether the pair belongs together. If a crash falls between the two renames,
the manifest that matches is still in the temporary folder: readers use it, and the next writer
moves it into place (roll forward). Temporary folders of runs that died earlier are removed.

On an object store (META given as s3://…, see core.storage) there is no rename: the new manifest is
first written as `META/.pending/<sha256>.json`, then entries.parquet, then manifest.json (the commit),
then the pending object is removed; readers and the next writer use a pending manifest whose sha256
matches the entries exactly as the local `.tmp-*` one. The lock is a lock object with a heartbeat.
"""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import storage
from core.atomic import read_json
from core.errors import UserError
from core.outputs import content_hash

ENTRIES = "entries.parquet"
MANIFEST = "manifest.json"
FORMAT = "worldclip-meta/1"
SCHEMA = pa.schema([("entry_id", pa.int32()), ("lang", pa.string()), ("entry", pa.string()), ("source", pa.string())])
MAX_ENTRIES = 2**31 - 1
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def entry_problem(entry: str) -> str | None:
    """Why `entry` cannot be a metadata entry (it could never match as intended), or None."""
    if not entry or entry.isspace():
        return "blank"
    if entry.strip() != entry:
        return "leading/trailing whitespace"
    if _CONTROL.search(entry):
        return "control character"
    return None


@dataclass
class Block:
    """Entries of one language from one source, in the order they should get ids."""

    lang: str
    source: str
    entries: list[str]


@dataclass
class AppendSummary:
    """What an append did: per (lang, source) added and duplicate counts."""

    added: dict[tuple[str, str], int] = field(default_factory=dict)
    duplicates: dict[tuple[str, str], int] = field(default_factory=dict)
    total_before: int = 0
    total_after: int = 0

    @property
    def n_added(self) -> int:
        return sum(self.added.values())

    @property
    def n_duplicates(self) -> int:
        return sum(self.duplicates.values())


def worldclip_version() -> str:
    try:
        return importlib_metadata.version("worldclip")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _pending_manifest(meta: Path, sha: str) -> dict | None:
    """A manifest left in META/.tmp-*/ by a commit interrupted between its two renames."""
    for tmp in sorted(meta.glob(".tmp-*")):
        candidate = tmp / MANIFEST
        if candidate.is_file():
            try:
                manifest = read_json(candidate)
            except UserError:
                continue
            if isinstance(manifest, dict) and manifest.get("entries_sha256") == sha:
                return manifest
    return None


def _read_manifest_url(meta: str, sha: str | None = None) -> dict:
    """read_manifest for a META on an object store (pending manifests under META/.pending/)."""
    entries, manifest_url = storage.join(meta, ENTRIES), storage.join(meta, MANIFEST)
    with storage.errors(meta, "META"):
        if not storage.exists(entries):
            raise UserError(f"{entries}: not found: create META with `curate metadata build`, `build-wiki` or `add`")
        sha = sha or storage.content_hash(entries)
        manifest = storage.read_json(manifest_url) if storage.exists(manifest_url) else None
        if isinstance(manifest, dict) and manifest.get("entries_sha256") == sha:
            return manifest
        pending = storage.join(meta, ".pending", f"{sha}.json")
        if storage.exists(pending):
            return storage.read_json(pending)
    if manifest is None:
        raise UserError(f"{manifest_url}: not found: META is incomplete; rebuild it")
    raise UserError(f"{entries}: does not match {manifest_url} (sha256 differs): META was changed by hand or is "
                    "corrupt; rebuild it")


def read_manifest(meta_dir: str | os.PathLike, sha: str | None = None) -> dict:
    """The manifest that describes META's current entries.parquet (UserError when there is none); `sha`: the
    sha256 of entries.parquet when the caller has its bytes already (else it is read and hashed here)."""
    if not storage.is_local(meta_dir):
        return _read_manifest_url(storage.normalize(meta_dir), sha)
    meta = storage.local_path(meta_dir)
    entries = meta / ENTRIES
    if not meta.is_dir():
        raise UserError(f"{meta}: metadata folder not found: create it with `curate metadata build`, `build-wiki` "
                        "or `add`")
    if not entries.is_file():
        raise UserError(f"{entries}: not found: create META with `curate metadata build`, `build-wiki` or `add`")
    sha = sha or content_hash(entries)
    manifest_path = meta / MANIFEST
    manifest = read_json(manifest_path) if manifest_path.is_file() else None
    if not isinstance(manifest, dict) or manifest.get("entries_sha256") != sha:
        pending = _pending_manifest(meta, sha)
        if pending is not None:
            return pending
        if manifest is None:
            raise UserError(f"{manifest_path}: not found: META is incomplete; rebuild it")
        raise UserError(f"{entries}: does not match {manifest_path} (sha256 differs): META was changed by hand or is "
                        "corrupt; rebuild it")
    return manifest


def load_entries(meta_dir: str | os.PathLike, verify: bool = False) -> pa.Table:
    """Read and validate META/entries.parquet; any problem is a UserError naming the path.

    Schema, nulls, dense ids and the row count are always checked, and the file must be the one
    the manifest describes (sha256), i.e. one that `append` wrote and checked. `verify=True` also
    re-checks that (lang, entry) is unique (about 1 s per million entries)."""
    return read_entries(meta_dir, verify).table


@dataclass
class EntriesFile:
    """META's entries as load_entries validated them, with the file's bytes and sha256 from the same read."""

    table: pa.Table
    data: bytes
    sha256: str


def read_entries(meta_dir: str | os.PathLike, verify: bool = False) -> EntriesFile:
    """load_entries reading the file once: its sha256 (the manifest check, a caller's fingerprint), its table
    and its bytes (a caller's copy) all come from one read, so they describe the same file."""
    meta = storage.normalize(meta_dir)
    path = storage.join(meta, ENTRIES)
    if not storage.exists(path):
        read_manifest(meta)  # the missing folder or file, named as read_manifest names it
    data = storage.read_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    manifest = read_manifest(meta, sha)
    try:
        # from the bytes hashed above, on this thread (no Arrow thread holds the Python-backed buffer, see
        # storage.read_parquet)
        table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    except (pa.ArrowInvalid, OSError) as e:
        raise UserError(f"{path}: not a readable Parquet file ({e}); rebuild META") from e
    if table.schema.remove_metadata() != SCHEMA:
        raise UserError(f"{path}: columns are {table.schema.names} with types {[str(t) for t in table.schema.types]}; "
                        f"expected entry_id int32, lang string, entry string, source string")
    table = table.replace_schema_metadata(None).combine_chunks()
    n = table.num_rows
    for name in SCHEMA.names:
        if table[name].null_count:
            raise UserError(f"{path}: column {name} has {table[name].null_count} null values; rebuild META")
    ids = table["entry_id"].to_numpy()
    if n and not (ids[0] == 0 and (ids[1:] - ids[:-1] == 1).all()):
        raise UserError(f"{path}: entry_id is not dense 0..{n - 1} in file order; rebuild META")
    if verify and table.group_by(["lang", "entry"]).aggregate([]).num_rows != n:
        raise UserError(f"{path}: (lang, entry) is not unique; rebuild META")
    if manifest.get("entries") != n:
        raise UserError(f"{path}: has {n} rows but {storage.join(meta, MANIFEST)} says {manifest.get('entries')}; "
                        "rebuild META")
    return EntriesFile(table, data, sha)


def language_sizes(table: pa.Table) -> dict[str, dict]:
    """Per language: total entries and entries by source (sorted by language, then source)."""
    grouped = table.group_by(["lang", "source"]).aggregate([("entry_id", "count")]).to_pylist()
    sizes: dict[str, dict] = {}
    for row in sorted(grouped, key=lambda r: (r["lang"], r["source"])):
        lang = sizes.setdefault(row["lang"], {"entries": 0, "sources": {}})
        lang["entries"] += row["entry_id_count"]
        lang["sources"][row["source"]] = row["entry_id_count"]
    return sizes


def _existing(meta: str) -> tuple[pa.Table, dict]:
    if not storage.exists(storage.join(meta, ENTRIES)) and not storage.exists(storage.join(meta, MANIFEST)):
        return SCHEMA.empty_table(), {}
    return load_entries(meta), read_manifest(meta)


def _new_rows(table: pa.Table, blocks: Iterable[Block],
              summary: AppendSummary) -> tuple[list[str], list[str], list[str]]:
    """Entries of `blocks` not yet in `table` (nor earlier in the blocks), in order; counts the rest."""
    seen: dict[str, set[str]] = {}
    langs: list[str] = []
    entries: list[str] = []
    sources: list[str] = []
    for block in blocks:
        if block.lang not in seen:
            mask = pc.equal(table["lang"], block.lang)
            seen[block.lang] = set(table.filter(mask)["entry"].to_pylist())
        lang_seen = seen[block.lang]
        before = len(lang_seen)
        for entry in block.entries:
            if entry not in lang_seen:
                lang_seen.add(entry)
                entries.append(entry)
        added = len(lang_seen) - before
        key = (block.lang, block.source)
        summary.added[key] = summary.added.get(key, 0) + added
        summary.duplicates[key] = summary.duplicates.get(key, 0) + len(block.entries) - added
        langs.extend([block.lang] * added)
        sources.extend([block.source] * added)
    return langs, entries, sources


def _commit(meta: Path, table: pa.Table, manifest: dict) -> None:
    """Write both files in META/.tmp-*/, then rename entries, then the manifest (see module doc)."""
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=meta))
    try:
        pq.write_table(table, tmp / ENTRIES)
        manifest["entries_sha256"] = content_hash(tmp / ENTRIES)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for name in (ENTRIES, MANIFEST):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp / ENTRIES, meta / ENTRIES)
        os.replace(tmp / MANIFEST, meta / MANIFEST)
        fd = os.open(meta, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise UserError(f"disk full while writing {meta}: free space and rerun the same command") from e
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _commit_url(meta: str, table: pa.Table, manifest: dict) -> None:
    """_commit on an object store: pending manifest, entries, manifest (the commit), drop the pending one."""
    import io

    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    import hashlib

    manifest["entries_sha256"] = hashlib.sha256(data).hexdigest()
    pending = storage.join(meta, ".pending", f"{manifest['entries_sha256']}.json")
    storage.write_json(pending, manifest)
    storage.write_bytes(storage.join(meta, ENTRIES), data)
    storage.write_json(storage.join(meta, MANIFEST), manifest)
    storage.remove(storage.join(meta, ".pending"))


def _recover_url(meta: str) -> None:
    """Roll a commit interrupted after its entries forward; drop pending manifests of dead runs."""
    entries = storage.join(meta, ENTRIES)
    if storage.exists(entries) and storage.exists(storage.join(meta, ".pending")):
        manifest = _read_manifest_url(meta)
        storage.write_json(storage.join(meta, MANIFEST), manifest)
    storage.remove(storage.join(meta, ".pending"))


def _recover(meta: Path) -> None:
    """Finish a commit interrupted between its renames, then drop leftovers of dead runs."""
    entries = meta / ENTRIES
    if entries.is_file():
        pending = _pending_manifest(meta, content_hash(entries))
        current = read_json(meta / MANIFEST) if (meta / MANIFEST).is_file() else None
        if pending is not None and (current is None or current.get("entries_sha256") != pending["entries_sha256"]):
            tmp_manifest = next(p for p in sorted(meta.glob(f".tmp-*/{MANIFEST}")) if read_json(p) == pending)
            os.replace(tmp_manifest, meta / MANIFEST)
    for leftover in meta.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def append(meta_dir: str | os.PathLike, blocks: Iterable[Block], record: dict) -> AppendSummary:
    """Append `blocks` to META (created if missing): duplicates of (lang, entry) are skipped and
    counted, existing ids never change, new ids follow in block order. `record` (command, sources
    with versions, options, skip counts, notes) is added to the manifest's history."""
    meta = storage.normalize(meta_dir)
    local = storage.is_local(meta)
    if local and Path(meta).exists() and not Path(meta).is_dir():
        raise UserError(f"--out {meta}: exists and is not a folder")
    with storage.errors(meta, "--out"), storage.lock(meta):
        _recover(Path(meta)) if local else _recover_url(meta)
        table, manifest = _existing(meta)
        summary = AppendSummary(total_before=table.num_rows)
        langs, entries, sources = _new_rows(table, blocks, summary)
        n_new = len(entries)
        if table.num_rows + n_new > MAX_ENTRIES:
            raise UserError(f"{meta}: more than {MAX_ENTRIES} entries do not fit int32 entry_id")
        new = pa.table({
            "entry_id": pa.array(range(table.num_rows, table.num_rows + n_new), pa.int32()),
            "lang": pa.array(langs, pa.string()),
            "entry": pa.array(entries, pa.string()),
            "source": pa.array(sources, pa.string()),
        }, schema=SCHEMA)
        combined = pa.concat_tables([table, new]) if table.num_rows else new
        summary.total_after = combined.num_rows
        now = _now()
        sources_info = dict(manifest.get("sources", {}))
        for name, info in record.get("sources", {}).items():
            sources_info[name] = info
        history = list(manifest.get("history", []))
        history.append({**record, "time": now, "added": summary.n_added, "duplicates": summary.n_duplicates})
        new_manifest = {
            "format": FORMAT,
            "worldclip_version": worldclip_version(),
            "created": manifest.get("created", now),
            "updated": now,
            "entries": combined.num_rows,
            "entries_sha256": "",
            "languages": language_sizes(combined),
            "sources": sources_info,
            "history": history,
        }
        _commit(Path(meta), combined, new_manifest) if local else _commit_url(meta, combined, new_manifest)
    return summary
