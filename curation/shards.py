"""WebDataset shard writing: plain ustar members, byte-for-byte deterministic, from the pool's images.

A sample is KEY.<jpg|png|webp> (the image bytes), KEY.txt (the chosen alt-text) and KEY.json. Members
carry fixed metadata (mtime 0, mode 0644, uid/gid 0), so the same samples always give the same bytes.

`write_group` is balance's shard stage for one task: the kept images of a run of consecutive pool
sources (positions [lo, hi) of kept.parquet, which is in (source, row) order), each source read once,
streaming. A shard lying wholly inside the task is written directly; one shared with a neighbouring
task is written as a piece (members without the end-of-archive blocks) and `finish_pieces` joins the
pieces. skipped/group-<lo>.parquet records corrupt, missing and unreadable images (with the damaged
pool files in its schema metadata) and marks the task done.

A damaged pool source (truncated tar, not a tar, corrupt Parquet or row group) costs only the images
that cannot be read: those before the damage are written, the rest get status `source_unreadable`, and
the file is reported. A source file that does not exist any more (or may not be read) stops the run with
a UserError instead: that is a moved or unmounted pool, and counting its images as lost would complete
a CURATED with a hole that a rerun after fixing the mount could not fill.
"""
from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import duck, storage
from core.atomic import atomic_path, write_parquet_atomic
from core.errors import UserError
from curation import images

BLOCK = 512
RECORD = 20 * BLOCK
SHARD_DIGITS = 5
KEY_DIGITS = 9
UNREADABLE = "source_unreadable"
UNREADABLE_KEY = b"worldclip.unreadable_sources"


def shard_name(shard: int) -> str:
    return f"{shard:0{SHARD_DIGITS}d}.tar"


def sample_key(index: int) -> str:
    """Key of the index-th sample of the whole set: a zero-padded running number (no dots)."""
    return f"{index:0{KEY_DIGITS}d}"


def member(name: str, data: bytes) -> bytes:
    """One tar member: ustar header + data padded to the block size."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    header = info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")
    return header + data + b"\0" * (-len(data) % BLOCK)


def sample_members(key: str, image: bytes, ext: str, text: str, meta: dict) -> bytes:
    """The three members of one sample, in the order OpenCLIP's webdataset pipeline groups them."""
    return (member(f"{key}.{ext}", image) + member(f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())
            + member(f"{key}.txt", text.encode("utf-8")))


def end_of_archive(size: int) -> bytes:
    """Two zero blocks, padded so the archive is a whole number of records (as tarfile writes)."""
    tail = 2 * BLOCK
    return b"\0" * (tail + (-(size + tail) % RECORD))


def write_tar(path: str | os.PathLike, chunks: Iterable[bytes]) -> int:
    """Write member bytes + end-of-archive, whole or not at all (a path or URL); returns the archive size."""
    size = 0
    with storage.open_output(path) as f:
        for chunk in chunks:
            f.write(chunk)
            size += len(chunk)
        end = end_of_archive(size)
        f.write(end)
    return size + len(end)


def write_piece(path: str | os.PathLike, chunks: Iterable[bytes]) -> None:
    """Write members without the end-of-archive blocks (a piece to concatenate later), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)


def join_pieces(path: str | os.PathLike, pieces: list[Path], bufsize: int = 1 << 20) -> int:
    """Concatenate pieces (in the given order) into one tar at `path`, atomically."""
    def chunks():
        for piece in pieces:
            with open(piece, "rb") as f:
                while block := f.read(bufsize):
                    yield block
    return write_tar(path, chunks())


def read_positions(path: Path, lo: int, hi: int) -> pa.Table:
    """Rows [lo, hi) of a Parquet file by position, reading only the row groups that hold them."""
    f = pq.ParquetFile(path)
    pieces, pos = [], 0
    for g in range(f.metadata.num_row_groups):
        n = f.metadata.row_group(g).num_rows
        if pos < hi and pos + n > lo:
            t = f.read_row_group(g)
            pieces.append(t.slice(max(lo - pos, 0), min(hi, pos + n) - max(lo, pos)))
        pos += n
    return pa.concat_tables(pieces) if pieces else f.schema_arrow.empty_table()


def source_groups(kept: Path, shard_size: int) -> list[tuple[int, int, list[str]]]:
    """Consecutive sources grouped into tasks of >= shard_size images: (first idx, end idx, sources)."""
    con = duck.connect()
    rows = con.execute("""SELECT source, min(file_row_number), max(file_row_number) + 1
                          FROM read_parquet(?, file_row_number = true) GROUP BY source ORDER BY 2""",
                       [str(kept)]).fetchall()
    con.close()
    groups: list[tuple[int, int, list[str]]] = []
    for source, lo, hi in rows:
        if groups and groups[-1][1] - groups[-1][0] < shard_size:
            a, _, srcs = groups[-1]
            groups[-1] = (a, hi, srcs + [source])
        else:
            groups.append((lo, hi, [source]))
    return groups


class _ShardSink:
    """Streams samples into the current shard file (full shard) or piece (shard shared with a neighbour)."""

    def __init__(self, out: str, work: Path, lo: int, hi: int, total: int, shard_size: int):
        self.out, self.work, self.lo, self.hi, self.total, self.size = out, work, lo, hi, total, shard_size
        self.shard, self.cm, self.f, self.bytes = None, None, None, 0
        self.opened: set[int] = set()

    def _whole(self, s: int) -> bool:
        return self.lo <= s * self.size and min((s + 1) * self.size, self.total) <= self.hi

    def _open(self, s: int) -> None:
        self.close()
        path = storage.join(self.out, "shards", shard_name(s)) if self._whole(s) else \
            (self.work / "pieces" / f"{s:0{SHARD_DIGITS}d}-{max(self.lo, s * self.size):012d}.tarpart")
        self.shard, self.cm, self.bytes = s, storage.open_output(path), 0
        self.opened.add(s)
        self.f = self.cm.__enter__()

    def add(self, idx: int, chunk: bytes) -> None:
        if self.shard != idx // self.size:
            self._open(idx // self.size)
        self.f.write(chunk)
        self.bytes += len(chunk)

    def touch_all(self) -> None:
        """Make sure every shard/piece of the range exists, even if all its images were skipped."""
        for s in range(self.lo // self.size, (self.hi - 1) // self.size + 1):
            if s not in self.opened:
                self._open(s)
        self.close()

    def close(self, exc: BaseException | None = None) -> None:
        if self.f is None:
            return
        if exc is None and self._whole(self.shard):
            self.f.write(end_of_archive(self.bytes))
        cm, self.f, self.cm = self.cm, None, None
        if exc is None:
            cm.__exit__(None, None, None)
        else:
            cm.__exit__(type(exc), exc, exc.__traceback__)


def _sample_meta(r: dict) -> dict:
    return {"uid": r["uid"], "url": r["url"], "lang": r["lang"], "entry_ids": r["entry_ids"], "text": r["text"],
            "texts": [[x["text"], x["lang"], x["entry_ids"]] for x in r["texts"]]}


def write_group(out: str, work: str, lo: int, hi: int, total: int, shard_size: int, image_column: str | None,
                tars_expected: bool = False) -> dict:
    """Write the samples with index in [lo, hi) (whole sources) into shards/pieces; record skipped ones."""
    out_p, work = storage.normalize(out), Path(work)
    rows = read_positions(work / "kept.parquet", lo, hi)
    rows = rows.append_column("idx", pa.array(np.arange(lo, hi, dtype=np.int64)))
    rows = rows.append_column("sample_key", pa.array([sample_key(i) for i in range(lo, hi)], pa.string()))
    skipped: dict[int, str] = {}
    damaged: list[dict] = []
    sink = _ShardSink(out_p, work, lo, hi, total, shard_size)
    written = nbytes = 0
    try:
        by_source: dict[str, list[dict]] = {}
        for r in rows.to_pylist():
            by_source.setdefault(r["source"], []).append(r)
        for source, recs in by_source.items():
            kind, path = images.source_kind(source, image_column, tars_expected)
            errors: list[str] = []
            lost = 0
            for r, data in _in_order(recs, _source_images(kind, path, recs, image_column, errors)):
                if (data is _MISSING and errors) or isinstance(data, images.SourceUnreadable):
                    skipped[r["idx"]] = UNREADABLE
                    lost += 1
                    continue
                ok = images.checked_image(data) if data is not _MISSING else None
                if ok is None:
                    skipped[r["idx"]] = "missing" if data is _MISSING else "corrupt"
                    continue
                sink.add(r["idx"], sample_members(r["sample_key"], ok[0], ok[1], r["text"], _sample_meta(r)))
                written += 1
                nbytes += len(ok[0])
            if errors:
                damaged.append({"source": source, "file": path, "error": errors[0], "images": lost})
        sink.touch_all()
    except BaseException as e:
        sink.close(e)
        raise
    table = pa.table({"idx": pa.array(list(skipped), pa.int64()),
                      "status": pa.array(list(skipped.values()), pa.string())})
    write_parquet_atomic(work / "skipped" / f"group-{lo:012d}.parquet",
                         table.replace_schema_metadata({UNREADABLE_KEY: json.dumps(damaged)}))
    return {"written": written, "bytes": nbytes}


def unreadable_sources(skipped: Iterable[Path]) -> list[dict]:
    """The damaged pool files recorded by write_group in skipped/group-*.parquet, in source order."""
    found = []
    for p in skipped:
        meta = pq.read_schema(p).metadata or {}
        found += json.loads(meta.get(UNREADABLE_KEY, b"[]"))
    return sorted(found, key=lambda d: d["source"])


_MISSING = object()


def _in_order(recs: list[dict], found: Iterator[tuple[int, Any]]) -> Iterator[tuple[dict, Any]]:
    """(record, bytes) in idx order as images stream in; a small buffer absorbs out-of-order members."""
    pending: dict[int, Any] = {}
    i = 0
    for idx, data in found:
        pending[idx] = data
        while i < len(recs) and recs[i]["idx"] in pending:
            yield recs[i], pending.pop(recs[i]["idx"])
            i += 1
    for r in recs[i:]:
        yield r, pending.pop(r["idx"], _MISSING)


def _source_images(kind: str, path: str, recs: list[dict], image_column: str | None, errors: list[str]
                   ) -> Iterator[tuple[int, bytes | None | images.SourceUnreadable]]:
    """(idx, image bytes) for the records of one source, streamed in the source's order. Damage is
    appended to `errors` (the records not yielded are then unreadable, not missing); a source that is
    not there stops the run."""
    try:
        if kind == images.KIND_TAR:
            by_key = {r["key"]: r["idx"] for r in recs if r["key"] is not None}
            for k, data in images.read_tar_images(path, set(by_key)):
                yield by_key[k], data
        elif kind == images.KIND_PARQUET:
            by_row = {r["row"]: r["idx"] for r in recs}
            for row, data in images.read_parquet_images(path, image_column, set(by_row)):
                if isinstance(data, images.SourceUnreadable) and not errors:
                    errors.append(str(data))
                yield by_row[row], data
    except images.SETUP_ERRORS as e:
        raise UserError(f"cannot read images from {path}: {e.strerror or e}; the pool file is gone or not "
                        "readable here: restore or mount it and rerun the same command to resume") from e
    except images.SourceUnreadable as e:
        errors.append(str(e))


def finish_pieces(out: str, work: Path) -> None:
    """Join the pieces of each shard shared by two tasks into the shard, then remove them."""
    pieces: dict[str, list[Path]] = {}
    for p in sorted((work / "pieces").glob("*.tarpart")):
        pieces.setdefault(p.name.split("-")[0], []).append(p)
    for s, ps in sorted(pieces.items()):
        target = storage.join(out, "shards", f"{s}.tar")
        if not storage.exists(target):
            join_pieces(target, ps)
        for p in ps:
            p.unlink()
