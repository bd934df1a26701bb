"""Attach captions made elsewhere to a CURATED set: `KEY.json` gains `captions: {source: text}`.

CURATED and the captions files are local paths or URLs (core.storage). Each shard is streamed and
rewritten member by member (the other members' bytes are copied unchanged, `KEY.txt` stays the
alt-text), whole under its own name: locally a temporary name renamed into place, on object stores one
upload that becomes visible when complete. The rewrite of a shard depends only on the shard and the
captions file, not on earlier attaches of the same source (its old captions are replaced, a uid without
a caption loses them), so rerunning gives the same bytes. Progress is journalled per shard (with the
rewritten shard's size and mtime, or ETag) in `captions/.attach-<source>.json` (object stores: one
journal object per shard, AttachJournal), so an interrupted attach resumes with the shards not yet
committed, and a shard replaced since is redone. stats.json gains `captions.<source>`: captioned and
uncaptioned images, captions whose uid is not in the set (`unknown_uids`) and repeated uids in the file
(the first one is used).
A captions file is streamed by record batch into an SQLite file on local scratch (DiskCaptions) and
looked up there per sample, so memory does not grow with it; `recaption`'s per-shard parts are attached
shard by shard (`by_shard`), so only one shard's captions are held in memory at a time.
"""
from __future__ import annotations

import contextlib
import json
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from core import storage
from core.errors import UserError
from curation.curated import curated_root, shard_paths, stem
from curation.shards import member, write_tar

SOURCE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
RESERVED = ("alt",)


def check_source(name: str) -> str:
    """A caption source name: letters, digits, `_ . -`; `alt` is reserved for the alt-text."""
    if not SOURCE_RE.match(name) or name in RESERVED:
        raise UserError(f"--source {name!r}: use letters, digits, '_', '.', '-' (not 'alt', which names the alt-text)")
    return name


class MemoryCaptions(dict):
    """uid -> caption in memory (one shard's part)."""

    def add(self, uids: list[str], captions: list) -> int:
        """Add pairs, the first of a repeated uid winning; returns how many uids were new."""
        n = len(self)
        for uid, cap in zip(uids, captions):
            self.setdefault(uid, str(cap))
        return len(self) - n

    def close(self) -> None:
        pass


class DiskCaptions:
    """uid -> caption in an SQLite file on local scratch (WORLDCLIP_SCRATCH, default the temp folder), so a
    whole captions file costs a few MB of memory whatever its size; the file is removed by close(). Its name
    holds host and pid, so the next one made on this host removes the files of processes that died without
    closing theirs (kill -9), and leaves those of live runs alone."""

    PREFIX = "worldclip-captions-"

    def __init__(self) -> None:
        import os
        import socket
        import sqlite3
        import tempfile

        scratch = os.environ.get("WORLDCLIP_SCRATCH") or tempfile.gettempdir()
        os.makedirs(scratch, exist_ok=True)
        remove_orphans(scratch, self.PREFIX)
        owner = f"{self.PREFIX}{socket.gethostname()}-{os.getpid()}-"
        fd, self.path = tempfile.mkstemp(prefix=owner, suffix=".sqlite", dir=scratch)
        os.close(fd)
        self.db = sqlite3.connect(self.path)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                              "CREATE TABLE c (uid TEXT PRIMARY KEY, caption TEXT NOT NULL) WITHOUT ROWID;")
        self.n = 0

    def add(self, uids: list[str], captions: list) -> int:
        before = self.db.total_changes
        self.db.executemany("INSERT OR IGNORE INTO c VALUES (?, ?)", ((u, str(c)) for u, c in zip(uids, captions)))
        self.db.commit()
        added = self.db.total_changes - before
        self.n += added
        return added

    def get(self, uid: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT caption FROM c WHERE uid = ?", (uid,)).fetchone()
        return row[0] if row else default

    def __len__(self) -> int:
        return self.n

    def close(self) -> None:
        import os

        self.db.close()
        os.remove(self.path)


def remove_orphans(scratch: str, prefix: str) -> list[str]:
    """Remove `prefix<host>-<pid>-*.sqlite` files in `scratch` left by dead processes of this host; returns them."""
    import os
    import socket

    from core.storage import pid_alive

    name = re.compile(rf"^{re.escape(prefix)}(?P<host>.+)-(?P<pid>\d+)-[^-]*\.sqlite$")
    removed = []
    for f in os.listdir(scratch):
        m = name.match(f)
        if m and m["host"] == socket.gethostname() and not pid_alive(int(m["pid"])):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(scratch, f))
                removed.append(f)
    return removed


@dataclass
class CaptionFile:
    """uid -> caption from Parquet files with columns uid and caption (first of a repeated uid wins)."""

    by_uid: MemoryCaptions | DiskCaptions
    rows: int
    duplicates: int
    fingerprint: str


def _batches(path: str) -> Iterator[tuple[int, list[str], list]]:
    """(first row, uids as strings, captions) per record batch of a captions Parquet file (path or URL),
    streamed; a missing column or a null is a UserError naming file and row."""
    with storage.errors(path, "--captions"):
        try:
            with storage.parquet_file(path) as pf:
                names = pf.schema_arrow.names
                if missing := [c for c in ("uid", "caption") if c not in names]:
                    raise UserError(f"--captions {path}: no column(s) {', '.join(missing)}; columns found: "
                                    f"{', '.join(names)} (write uid and caption)")
                row = 0
                for b in pf.iter_batches(batch_size=1 << 14, columns=["uid", "caption"]):
                    for col in ("uid", "caption"):
                        if b.column(col).null_count:
                            at = row + pc.index(pc.is_null(b.column(col)), True).as_py()
                            raise UserError(f"--captions {path}: row {at}: {col} is null; drop the row or fill it")
                    yield row, b.column("uid").cast(pa.string()).to_pylist(), b.column("caption").to_pylist()
                    row += b.num_rows
        except (OSError, pa.ArrowException) as e:
            raise UserError(f"--captions {path}: not a readable Parquet file ({e})") from e


def read_captions(paths: list[str], on_disk: bool = False) -> CaptionFile:
    """Read caption Parquet files (in the given order), streamed, into memory or (`on_disk`) a DiskCaptions;
    null uids or captions are a UserError."""
    by_uid = DiskCaptions() if on_disk else MemoryCaptions()
    rows = dups = 0
    try:
        for path in paths:
            for _, uids, caps in _batches(path):
                dups += len(uids) - by_uid.add(uids, caps)
                rows += len(uids)
    except BaseException:
        by_uid.close()
        raise
    fp = "+".join(storage.content_hash(p)[:16] for p in paths)
    return CaptionFile(by_uid, rows, dups, fp)


def _members(path: str) -> Iterator[tuple[str, bytes]]:
    """(name, data) of a tar's regular members, in order, streamed from a path or URL."""
    try:
        with storage.open_input(path) as f, storage.errors(path), tarfile.open(fileobj=f, mode="r") as tf:
            for m in tf:
                if m.isreg():
                    yield m.name, tf.extractfile(m).read()
    except (tarfile.TarError, EOFError) as e:
        raise UserError(f"{path}: not a readable tar ({e}); restore the shard and rerun the same command") from e


def shard_samples(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample of a shard, members grouped by key (the name before the first dot)."""
    key, group = None, {}
    for name, data in _members(path):
        k, _, ext = name.rpartition("/")[2].partition(".")
        if k != key and group:
            yield key, group
            group = {}
        key, group[ext] = k, data
    if group:
        yield key, group


def with_caption(meta: dict, source: str, caption: str | None) -> dict:
    """meta with captions[source] set (or removed when caption is None); sources kept in name order."""
    caps = {k: v for k, v in (meta.get("captions") or {}).items() if k != source}
    if caption is not None:
        caps[source] = caption
    out = {k: v for k, v in meta.items() if k != "captions"}
    if caps:
        out["captions"] = dict(sorted(caps.items()))
    return out


def rewrite_shard(path: str, source: str, by_uid: MemoryCaptions | DiskCaptions | dict) -> dict:
    """Rewrite one shard (path or URL) with captions[source] from `by_uid`, whole under its own name (local:
    temp file + rename; object stores: one upload read to the end first); returns counts and bytes written."""
    counts = {"captioned": 0, "uncaptioned": 0, "bytes": 0}

    def chunks() -> Iterator[bytes]:
        for name, data in _members(path):
            if name.endswith(".json"):
                try:
                    meta = json.loads(data)
                except ValueError as e:
                    raise UserError(f"{path}: member {name} is not valid JSON ({e})") from e
                caption = by_uid.get(str(meta.get("uid")))
                counts["captioned" if caption is not None else "uncaptioned"] += 1
                data = json.dumps(with_caption(meta, source, caption), ensure_ascii=False).encode()
            yield member(name, data)

    counts["bytes"] = write_tar(path, chunks())
    return counts


def _stat(path: str) -> list:
    """Identity of a shard as the journal records it (local: size and mtime; object stores: size and ETag):
    a shard replaced since (rebalanced, re-downloaded) is rewritten again."""
    if storage.is_local(path):
        st = storage.local_path(path).stat()
        return [st.st_size, st.st_mtime_ns]
    fp = storage.fingerprint(path)
    return [fp["size"], fp["etag"] or fp["mtime"]]


class AttachJournal:
    """Which shards an attach of `source` finished, for the captions' `fingerprint`.

    Local: one JSON file `captions/.attach-<source>.json` {fingerprint, done: {shard: record}}, rewritten
    atomically after each shard. Object stores: a storage.Journal `captions/.attach-<source>.journal/` with
    one object per shard (`<shard>.json`: the record plus the fingerprint), written after the shard: the
    shard's commit. Records of another fingerprint are ignored.
    """

    def __init__(self, curated: str, source: str, fingerprint: str) -> None:
        self.fingerprint, self.local = fingerprint, storage.is_local(curated)
        folder = storage.join(curated, "captions")
        if self.local:
            self.path = storage.join(folder, f".attach-{source}.json")
            data = storage.read_json(self.path) if storage.exists(self.path) else {}
            self.done = data["done"] if data.get("fingerprint") == fingerprint else {}
        else:
            self.journal = storage.Journal(folder, f".attach-{source}")
            self.done = {r["name"]: r["record"] for r in self.journal.records() if r.get("fingerprint") == fingerprint}

    def commit(self, shard: str, record: dict) -> None:
        name = storage.name(shard)
        self.done[name] = record
        if self.local:
            storage.makedirs(storage.parent(self.path))
            storage.write_json(self.path, {"fingerprint": self.fingerprint, "done": self.done})
        else:
            self.journal.append(stem(shard), {"name": name, "fingerprint": self.fingerprint, "record": record})


def attach(curated: str | Path, source: str, captions: list[str]) -> dict:
    """Attach the captions to every shard (resuming an interrupted attach); returns the stats entry."""
    curated = curated_root(curated)
    with storage.errors(curated, "CURATED"), storage.lock(curated):
        return attach_locked(curated, source, captions)


def attach_locked(curated: str, source: str, captions: list[str], by_shard: bool = False) -> dict:
    """`attach` for a caller that already holds CURATED's output lock. With `by_shard`, captions are one
    part per shard named after it (`recaption`'s output): only that shard's part is held in memory; a
    whole captions file is looked up on local scratch (DiskCaptions), so memory stays bounded either way."""
    t0 = time.time()
    curated = curated_root(curated)
    source, paths, captions = check_source(source), shard_paths(curated), [str(p) for p in captions]
    cf = None if by_shard else read_captions(captions, on_disk=True)
    try:
        return _attach(curated, source, paths, captions, cf, t0)
    finally:
        if cf is not None:
            cf.by_uid.close()


def _attach(curated: str, source: str, paths: list[str], captions: list[str], cf: CaptionFile | None,
            t0: float) -> dict:
    """attach_locked's work: rewrite the shards not yet committed, then record the stats."""
    from tqdm import tqdm

    by_shard = cf is None
    parts = {stem(p): p for p in captions}
    fingerprint = "by-shard:" + "+".join(storage.content_hash(p)[:16] for p in captions) if by_shard \
        else cf.fingerprint
    journal = AttachJournal(curated, source, fingerprint)
    nbytes = 0
    todo = [p for p in paths if journal.done.get(storage.name(p), {}).get("shard") != _stat(p)]
    for path in tqdm(todo, desc=f"attach {source}", unit="shard", leave=False):
        own = cf or (read_captions([parts[stem(path)]]) if stem(path) in parts
                     else CaptionFile(MemoryCaptions(), 0, 0, ""))
        c = rewrite_shard(path, source, own.by_uid)
        nbytes += c.pop("bytes")
        if by_shard:
            c |= {"rows": own.rows, "duplicates": own.duplicates, "unknown": len(own.by_uid) - c["captioned"]}
        journal.commit(path, c | {"shard": _stat(path)})
    done = [journal.done[storage.name(p)] for p in paths]
    stats = _stats_entry(cf, done, len(paths))
    if by_shard:  # parts named after no shard: all their captions are for unknown uids
        stems = {stem(q) for q in paths}
        for orphan in (read_captions([p]) for p in captions if stem(p) not in stems):
            stats["captions_rows"] += orphan.rows
            stats["unknown_uids"] += len(orphan.by_uid)
            stats["duplicate_uids"] += orphan.duplicates
    stats.update(seconds=round(time.time() - t0, 3), bytes_rewritten=nbytes)
    _record(curated, source, stats)
    return stats


def _stats_entry(cf: CaptionFile | None, done: list[dict], shards: int) -> dict:
    """Counts for stats.json: from the whole captions file, or summed over per-shard parts (cf None)."""
    captioned = sum(d["captioned"] for d in done)
    uncaptioned = sum(d["uncaptioned"] for d in done)
    if cf is None:
        rows, dups, unknown = (sum(d[k] for d in done) for k in ("rows", "duplicates", "unknown"))
    else:
        rows, dups, unknown = cf.rows, cf.duplicates, len(cf.by_uid) - captioned
    return {"captions_rows": rows, "captioned": captioned, "uncaptioned": uncaptioned, "unknown_uids": unknown,
            "duplicate_uids": dups, "shards": shards}


def _record(curated: str, source: str, entry: dict) -> None:
    """stats.json's captions.<source> = entry (stats.json is created if the set has none)."""
    path = storage.join(curated, "stats.json")
    stats = storage.read_json(path) if storage.exists(path) else {}
    stats.setdefault("captions", {})[source] = entry
    storage.write_json(path, stats)


def summary_line(source: str, entry: dict, curated: str) -> str:
    mb = entry.get("bytes_rewritten", 0) / 1e6
    return (f"captions add: {entry['captioned']} images captioned by {source}, {entry['uncaptioned']} without a "
            f"caption, {entry['unknown_uids']} captions for uids not in the set, {entry['duplicate_uids']} repeated "
            f"uids; {entry['shards']} shards, {mb:.1f} MB rewritten in {entry['seconds']:.1f}s -> {curated}")
