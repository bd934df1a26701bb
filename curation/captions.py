"""Attach captions made elsewhere to a CURATED set: `KEY.json` gains `captions: {source: text}`.

Each shard is rewritten member by member (the other members' bytes are copied unchanged, `KEY.txt`
stays the alt-text), to a temporary name and renamed into place. The rewrite of a shard depends only
on the shard and the captions file, not on earlier attaches of the same source (its old captions are
replaced, a uid without a caption loses them), so rerunning gives the same bytes. Progress is
journalled per shard (with the rewritten shard's size and mtime) in `captions/.attach-<source>.json`,
so an interrupted attach resumes with the shards not yet done, and a shard replaced since is redone. stats.json gains `captions.<source>`: captioned and uncaptioned images, captions
whose uid is not in the set (`unknown_uids`) and repeated uids in the file (the first one is used).
A captions file is held in memory as one uid -> caption map; `recaption`'s per-shard parts are
attached shard by shard (`by_shard`), so only one shard's captions are held at a time.
"""
from __future__ import annotations

import json
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.common import UserError, content_hash, output_lock, read_json, write_json_atomic
from curation.shards import member, write_tar

SOURCE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
RESERVED = ("alt",)


def check_source(name: str) -> str:
    """A caption source name: letters, digits, `_ . -`; `alt` is reserved for the alt-text."""
    if not SOURCE_RE.match(name) or name in RESERVED:
        raise UserError(f"--source {name!r}: use letters, digits, '_', '.', '-' (not 'alt', which names the alt-text)")
    return name


def local_curated(curated: str | Path) -> Path:
    """CURATED as a local Path (a plain path or file:// URL); object-store URLs are refused in one line."""
    from curation import storage

    if not storage.is_local(curated):
        raise UserError(f"{curated}: captions, recaption and score work on a local CURATED folder only for now; "
                        "copy it to local disk (or a mounted bucket) and run there")
    return storage.local_path(curated)


def shard_paths(curated: Path) -> list[Path]:
    """CURATED/shards/*.tar in name order; UserError when there are none."""
    found = sorted((curated / "shards").glob("*.tar"))
    if not found:
        raise UserError(f"{curated} has no shards/*.tar: give a CURATED folder written by `curate balance` "
                        "(or `curate download`)")
    return found


@dataclass
class CaptionFile:
    """uid -> caption from a Parquet file with columns uid and caption (first of a repeated uid wins)."""

    by_uid: dict[str, str]
    rows: int
    duplicates: int
    fingerprint: str


def read_captions(paths: list[Path]) -> CaptionFile:
    """Read caption Parquet files (in the given order); null uids or captions are a UserError."""
    by_uid: dict[str, str] = {}
    rows = dups = 0
    for path in paths:
        try:
            t = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            raise UserError(f"--captions {path}: not a readable Parquet file ({e})") from e
        if missing := [c for c in ("uid", "caption") if c not in t.column_names]:
            raise UserError(f"--captions {path}: no column(s) {', '.join(missing)}; columns found: "
                            f"{', '.join(t.column_names)} (write uid and caption)")
        for col in ("uid", "caption"):
            if t.column(col).null_count:
                row = pc.index(pc.is_null(t.column(col)), True).as_py()
                raise UserError(f"--captions {path}: row {row}: {col} is null; drop the row or fill it")
        for uid, cap in zip(t.column("uid").cast(pa.string()).to_pylist(), t.column("caption").to_pylist()):
            if uid in by_uid:
                dups += 1
            else:
                by_uid[uid] = str(cap)
        rows += t.num_rows
    fp = "+".join(content_hash(p)[:16] for p in paths)
    return CaptionFile(by_uid, rows, dups, fp)


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, data) of a tar's regular members, in order."""
    try:
        with tarfile.open(path, "r") as tf:
            for m in tf:
                if m.isreg():
                    yield m.name, tf.extractfile(m).read()
    except (tarfile.TarError, EOFError) as e:
        raise UserError(f"{path}: not a readable tar ({e}); restore the shard and rerun the same command") from e


def shard_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
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


def rewrite_shard(path: Path, source: str, by_uid: dict[str, str]) -> dict:
    """Rewrite one shard with captions[source] from `by_uid`; returns counts and bytes written."""
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


def _stat(path: Path) -> list[int]:
    """Size and mtime of a shard as the journal records it: a shard replaced since (rebalanced,
    re-downloaded) is rewritten again."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _journal(curated: Path, source: str) -> Path:
    return curated / "captions" / f".attach-{source}.json"


def attach(curated: str | Path, source: str, captions: list[Path]) -> dict:
    """Attach the captions to every shard (resuming an interrupted attach); returns the stats entry."""
    curated = local_curated(curated)
    with output_lock(curated):
        return attach_locked(curated, source, captions)


def attach_locked(curated: Path, source: str, captions: list[Path], by_shard: bool = False) -> dict:
    """`attach` for a caller that already holds CURATED's output lock. With `by_shard`, captions are one
    part per shard named after it (`recaption`'s output): only that shard's part is held in memory."""
    from tqdm import tqdm

    t0 = time.time()
    source, paths, captions = check_source(source), shard_paths(curated), [Path(p) for p in captions]
    cf = None if by_shard else read_captions(captions)
    parts = {p.stem: p for p in captions}
    fingerprint = "by-shard:" + "+".join(content_hash(p)[:16] for p in captions) if by_shard else cf.fingerprint
    jpath = _journal(curated, source)
    journal = read_json(jpath) if jpath.exists() else {}
    if journal.get("fingerprint") != fingerprint:
        journal = {"fingerprint": fingerprint, "done": {}}
    nbytes = 0
    todo = [p for p in paths if journal["done"].get(p.name, {}).get("shard") != _stat(p)]
    for path in tqdm(todo, desc=f"attach {source}", unit="shard", leave=False):
        own = cf or (read_captions([parts[path.stem]]) if path.stem in parts else CaptionFile({}, 0, 0, ""))
        c = rewrite_shard(path, source, own.by_uid)
        nbytes += c.pop("bytes")
        if by_shard:
            c |= {"rows": own.rows, "duplicates": own.duplicates, "unknown": len(own.by_uid) - c["captioned"]}
        journal["done"][path.name] = c | {"shard": _stat(path)}
        write_json_atomic(jpath, journal)
    journal["done"] = {p.name: journal["done"][p.name] for p in paths}
    stats = _stats_entry(cf, list(journal["done"].values()), len(paths))
    if by_shard:  # parts named after no shard: all their captions are for unknown uids
        stems = {q.stem for q in paths}
        for orphan in (read_captions([p]) for p in captions if p.stem not in stems):
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


def _record(curated: Path, source: str, entry: dict) -> None:
    """stats.json's captions.<source> = entry (stats.json is created if the set has none)."""
    path = curated / "stats.json"
    stats = read_json(path) if path.exists() else {}
    stats.setdefault("captions", {})[source] = entry
    write_json_atomic(path, stats)


def summary_line(source: str, entry: dict, curated: str) -> str:
    mb = entry.get("bytes_rewritten", 0) / 1e6
    return (f"captions add: {entry['captioned']} images captioned by {source}, {entry['uncaptioned']} without a "
            f"caption, {entry['unknown_uids']} captions for uids not in the set, {entry['duplicate_uids']} repeated "
            f"uids; {entry['shards']} shards, {mb:.1f} MB rewritten in {entry['seconds']:.1f}s -> {curated}")
