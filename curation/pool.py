"""Pool readers: find the pool's files, cut them into deterministic parts, stream a part as Arrow batches.

Formats (DESIGN.md "Pool"):
- parquet: files, folders (all `*.parquet` below, sorted) or globs; columns named by flags.
- img2dataset: a folder of `NNNNN.parquet` + `NNNNN.tar` (+ `NNNNN_stats.json`); rows with
  status == "success" are texts (column `caption` by default), other statuses are rejected
  "download_failed".
- webdataset: `.tar` files; a sample's text is its `.txt` member, url/uid/lang come from its `.json`.
- wat: Common Crawl `.warc.wat.gz`; every `IMG@/src` link's `alt`, `title` and `data-image-title` is
  one text (as MetaCLIP's parse_wat), the image url resolved against the page's WARC-Target-URI.

Parts: Parquet and img2dataset files are cut into row ranges of `part_size` rows (known from the
footer); a tar or WAT file is one part, read as a stream in batches. The partition depends only on
the sorted file list and `part_size`, so a rerun sees the same parts (needed for resume).

Every batch a reader yields has the columns of `BATCH_SCHEMA`; rows it cannot turn into a text are
counted in the reader's `rejected` dict instead, so nothing is dropped silently.
"""
from __future__ import annotations

import glob
import gzip
import io
import json
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation import storage
from curation.common import UserError

BATCH_SCHEMA = pa.schema([
    ("text", pa.string()), ("uid", pa.string()), ("url", pa.string()), ("lang", pa.string()),
    ("key", pa.string()), ("row", pa.int64()),
])
WAT_TEXT_KEYS = ("alt", "title", "data-image-title")
IMAGE_COLUMN_GUESSES = ("image", "jpg", "png", "webp", "image_bytes")
STREAM_BATCH_ROWS = 20_000


@dataclass(frozen=True)
class PoolFile:
    path: str  # absolute
    format: str  # parquet | img2dataset | webdataset | wat
    num_rows: int | None = None  # known for parquet / img2dataset


@dataclass(frozen=True)
class Part:
    part: int
    path: str
    format: str
    start: int = 0
    stop: int | None = None  # None: the whole (streamed) file

    @property
    def num_rows(self) -> int | None:
        return None if self.stop is None else self.stop - self.start


@dataclass(frozen=True)
class PoolColumns:
    """Column names to read; None where the pool has no such column."""

    text: str | None
    uid: str | None
    url: str | None
    lang: str | None
    image: str | None = None
    key: str | None = None
    explicit_text: bool = False  # --text-column given: used for img2dataset files too (else `caption`)

    def text_for(self, fmt: str) -> str | None:
        return "caption" if fmt == "img2dataset" and not self.explicit_text else self.text


@dataclass
class ReadStats:
    rejected: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)


def _format_of_file(path: Path | str) -> str | None:
    name = storage.name(path)
    if name.endswith(".warc.wat.gz") or name.endswith(".wat.gz"):
        return "wat"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".tar"):
        return "webdataset"
    return None


def _is_img2dataset_dir(path: Path) -> bool:
    parquets = sorted(path.glob("*.parquet"))
    return bool(parquets) and all(p.with_suffix(".tar").exists() for p in parquets)


def _expand_url(arg: str, found: dict[str, str]) -> None:
    """One --pool URL (object, prefix or glob on an object store) -> (URL, format) entries of `found`."""
    with storage.errors(arg, "--pool"):
        matches = storage.glob(arg) if storage.has_magic(arg) else [storage.normalize(arg)]
        if not matches:
            raise UserError(f"--pool {arg}: no object matches this pattern; check the URL and the pattern")
        for m in matches:
            if storage.isdir(m):
                files = storage.list_files(m)
                top = {u for u in files if storage.parent(u) == m}
                parquets = [u for u in top if u.endswith(".parquet")]
                if parquets and all(u[: -len(".parquet")] + ".tar" in top for u in parquets):
                    found.update({u: "img2dataset" for u in parquets})
                    continue
                pool = {u: _format_of_file(u) for u in files if _format_of_file(u)}
                if not pool:
                    raise UserError(f"--pool {arg}: the listing of {m} names no .parquet, .tar or .warc.wat.gz "
                                    f"object ({len(files)} objects); check the prefix")
                found.update(pool)
            elif storage.isfile(m):
                fmt = _format_of_file(m)
                if fmt is None:
                    raise UserError(f"--pool {m}: unknown file type (expected .parquet, .tar, .warc.wat.gz "
                                    "or an img2dataset output folder)")
                found[m] = fmt
            else:
                raise UserError(f"--pool {arg}: no such object or prefix; check the bucket and path")


def expand_paths(paths: list[str]) -> list[tuple[str, str]]:
    """Pool arguments -> sorted, de-duplicated (file, format) pairs; raises UserError on a bad path.

    Local files are absolute paths, objects are URLs (curation.storage)."""
    found: dict[str, str] = {}
    for arg in paths:
        if not storage.is_local(arg):
            _expand_url(arg, found)
            continue
        arg = str(storage.local_path(arg))
        matches = sorted(glob.glob(arg, recursive=True)) if glob.has_magic(arg) else [arg]
        if not matches:
            raise UserError(f"--pool {arg}: no file matches this pattern")
        for m in matches:
            p = Path(m).resolve()
            if p.is_dir():
                if _is_img2dataset_dir(p):
                    found.update({str(q.resolve()): "img2dataset" for q in p.glob("*.parquet")})
                    continue
                files = [q for q in sorted(p.rglob("*")) if q.is_file() and _format_of_file(q)]
                if not files:
                    raise UserError(f"--pool {arg}: folder has no .parquet, .tar or .warc.wat.gz files")
                found.update({str(q.resolve()): _format_of_file(q) for q in files})
            elif p.is_file():
                fmt = _format_of_file(p)
                if fmt is None:
                    raise UserError(f"--pool {m}: unknown file type (expected .parquet, .tar, .warc.wat.gz "
                                    "or an img2dataset output folder)")
                if fmt == "parquet" and p.with_suffix(".tar").exists() and _is_img2dataset_dir(p.parent):
                    fmt = "img2dataset"
                found[str(p)] = fmt
            else:
                raise UserError(f"--pool {arg}: no such file or folder")
    return sorted(found.items())


def parquet_file(path: str) -> pq.ParquetFile:
    """A Parquet file by local path or URL (object stores: ranged reads of the footer and needed columns)."""
    return pq.ParquetFile(path if storage.is_local(path) else storage.open_input(path))


def parquet_schema(path: str | Path) -> tuple[pa.Schema, int]:
    try:
        f = parquet_file(str(path))
        return f.schema_arrow, f.metadata.num_rows
    except Exception as e:  # pyarrow raises several types for a bad footer
        raise UserError(f"{path}: not a readable Parquet file ({e}); remove it from --pool or replace it") from e


def _binary_columns(schema: pa.Schema) -> set[str]:
    return {f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)}


def resolve_columns(files: list[tuple[Path, str]], *, text: str | None, uid: str | None, url: str | None,
                    image: str | None, lang: str | None, lang_required: bool) -> tuple[list[PoolFile], PoolColumns]:
    """Check the flags against every Parquet schema (footers only) and pick the columns to read.

    None means "the default": text `text` (`caption` in img2dataset files); `uid`, `url` and the
    language column are read from each file that has them (nulls elsewhere) and reported when at least
    one file has them; the image column is the first of IMAGE_COLUMN_GUESSES that every file has as
    bytes. A column named by a flag must exist in every Parquet file (the error lists the columns).
    `lang_required`: the language column was named by --lid column:NAME.
    """
    pool_files: list[PoolFile] = []
    seen: set[str] = set()
    binary: set[str] | None = None
    for path, fmt in files:
        if fmt not in ("parquet", "img2dataset"):
            pool_files.append(PoolFile(str(path), fmt))
            continue
        schema, n = parquet_schema(path)
        names = schema.names
        text_col = text or ("caption" if fmt == "img2dataset" else "text")
        needed = [(text_col, "--text-column"), (uid, "--uid-column"), (url, "--url-column"), (image, "--image-column")]
        if lang_required:
            needed.append((lang, f"--lid column:{lang}"))
        if fmt == "img2dataset":
            needed.append(("status", "img2dataset status"))
        for col, flag in needed:
            if col and col not in names:
                raise UserError(f"{path}: no column {col!r} ({flag}); columns found: {', '.join(names)}")
        seen |= set(names)
        binary = _binary_columns(schema) if binary is None else binary & _binary_columns(schema)
        pool_files.append(PoolFile(str(path), fmt, n))
    if binary is None:  # only stream formats: fields come from each sample's .json / the WAT record
        return pool_files, PoolColumns(text=None, uid=uid or "uid", url=url or "url", lang=lang)
    formats = {f.format for f in pool_files}
    return pool_files, PoolColumns(
        text=text or ("caption" if formats == {"img2dataset"} else "text"),
        uid=(uid or "uid") if (uid or "uid") in seen else None,
        url=(url or "url") if (url or "url") in seen else None,
        lang=lang if lang in seen else None,
        image=image or next((c for c in IMAGE_COLUMN_GUESSES if c in binary), None), key="key",
        explicit_text=text is not None)


def make_parts(files: list[PoolFile], part_size: int) -> list[Part]:
    """Deterministic partition: row ranges of part_size for Parquet-backed files, one part per stream file."""
    parts: list[Part] = []
    for f in files:
        if f.num_rows is None:
            parts.append(Part(len(parts), f.path, f.format))
            continue
        for start in range(0, max(f.num_rows, 1), part_size):
            parts.append(Part(len(parts), f.path, f.format, start, min(start + part_size, f.num_rows)))
    return parts


def read_part(part: Part, cols: PoolColumns, stats: ReadStats) -> Iterator[pa.Table]:
    """Stream one part as BATCH_SCHEMA tables; rejections and file errors go into `stats`."""
    readers = {"parquet": _read_parquet, "img2dataset": _read_parquet,
               "webdataset": _read_webdataset, "wat": _read_wat}
    yield from readers[part.format](part, cols, stats)


def _column(table: pa.Table, name: str | None) -> pa.Array:
    if name is None or name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    col = table.column(name).combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(pa.string())


def _read_parquet(part: Part, cols: PoolColumns, stats: ReadStats) -> Iterator[pa.Table]:
    img2 = part.format == "img2dataset"
    text_col = cols.text_for(part.format)
    wanted = [c for c in (text_col, cols.uid, cols.url, cols.lang) if c]
    if img2:
        wanted += ["status", "key"]
    done = 0  # rows of the part already handed on
    try:
        f = parquet_file(part.path)
        names = set(f.schema_arrow.names)
        wanted = list(dict.fromkeys(c for c in wanted if c in names))
        meta = f.metadata
        groups, first_row, pos = [], None, 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if pos < part.stop and pos + n > part.start:
                groups.append(g)
                first_row = pos if first_row is None else first_row
            pos += n
        row = first_row or 0
        for batch in f.iter_batches(batch_size=65_536, row_groups=groups, columns=wanted):
            lo, hi = max(part.start - row, 0), min(part.stop - row, batch.num_rows)
            if lo < hi:
                table = pa.Table.from_batches([batch.slice(lo, hi - lo)])
                done += hi - lo
                yield _parquet_batch(table, row + lo, text_col, cols, img2, stats)
            row += batch.num_rows
            if row >= part.stop:
                break
    except (OSError, pa.ArrowException) as e:
        stats.rejected["unreadable_file"] += part.num_rows - done
        stats.errors.append({"source": part.path, "rows": [part.start + done, part.stop], "error": str(e)})


def _parquet_batch(t: pa.Table, first_row: int, text_col: str, cols: PoolColumns, img2: bool,
                   stats: ReadStats) -> pa.Table:
    rows = pa.array(range(first_row, first_row + t.num_rows), pa.int64())
    out = pa.table([_column(t, text_col), _column(t, cols.uid), _column(t, cols.url), _column(t, cols.lang),
                    _column(t, "key" if img2 else None), rows], schema=BATCH_SCHEMA)
    if img2:
        ok = pc.fill_null(pc.equal(_column(t, "status"), "success"), False)
        failed = out.num_rows - pc.sum(ok).as_py() if out.num_rows else 0
        if failed:
            stats.rejected["download_failed"] += failed
        out = out.filter(ok)
    return out


class _BatchBuilder:
    """Collect row dicts from a streamed file and emit BATCH_SCHEMA tables of bounded size."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, **row) -> pa.Table | None:
        self.rows.append(row)
        return self.flush() if len(self.rows) >= STREAM_BATCH_ROWS else None

    def flush(self) -> pa.Table | None:
        if not self.rows:
            return None
        t = pa.Table.from_pylist(self.rows, schema=BATCH_SCHEMA)
        self.rows = []
        return t


def _sample_key(name: str) -> tuple[str, str]:
    """WebDataset convention: key = path up to the first dot of the basename; the rest is the extension."""
    d, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{d}/{stem}" if d else stem), ext.lower()


def _read_webdataset(part: Part, cols: PoolColumns, stats: ReadStats) -> Iterator[pa.Table]:
    builder, sample, key, index = _BatchBuilder(), {}, None, 0

    def finish() -> pa.Table | None:
        nonlocal index
        row, index = index, index + 1
        raw = sample.get("txt")
        if raw is None:
            stats.rejected["missing_text"] += 1
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats.rejected["undecodable_text"] += 1
            return None
        info = {}
        if "json" in sample:
            try:
                info = json.loads(sample["json"])
                info = info if isinstance(info, dict) else {}
            except (ValueError, UnicodeDecodeError):
                info = {}

        def field_of(name: str | None):
            v = info.get(name) if name else None
            return None if v is None else str(v)

        return builder.add(text=text, uid=field_of(cols.uid or "uid"), url=field_of(cols.url or "url"),
                           lang=field_of(cols.lang), key=key, row=row)

    try:
        with storage.open_input(part.path) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                k, ext = _sample_key(member.name)
                if k != key and key is not None:
                    if (t := finish()) is not None:
                        yield t
                    sample = {}
                key = k
                sample[ext] = tar.extractfile(member).read() if ext in ("txt", "json") else b""
        if key is not None:
            if (t := finish()) is not None:
                yield t
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        if sample:  # the members read before the damage are whole: keep that sample
            if (t := finish()) is not None:
                yield t
        stats.rejected["unreadable_file"] += 1
        stats.errors.append({"source": part.path, "after_samples": index, "error": f"{type(e).__name__}: {e}"})
    if (t := builder.flush()) is not None:
        yield t


def _clean(s: str) -> str:
    """Lone surrogates (from JSON \\ud800 escapes) cannot be stored as UTF-8: each becomes "?"."""
    return s.encode("utf-8", "replace").decode("utf-8") if any(0xD800 <= ord(c) <= 0xDFFF for c in s) else s


def _read_wat(part: Part, cols: PoolColumns, stats: ReadStats) -> Iterator[pa.Table]:
    builder, row, target = _BatchBuilder(), 0, None
    try:
        with storage.open_input(part.path) as raw, gzip.open(raw, "rb") as f:
            for raw in io.BufferedReader(f, 1 << 20):
                line = raw.strip()
                if line.startswith(b"WARC-Target-URI:"):
                    target = line[len(b"WARC-Target-URI:"):].strip().decode("utf-8", "replace")
                    continue
                if target is None or not line.startswith(b"{"):
                    continue
                page, target = target, None
                try:
                    links = json.loads(line)["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"][
                        "HTML-Metadata"].get("Links") or []
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # not an HTML response (e.g. a request or metadata record): no images
                for link in links:
                    if not isinstance(link, dict) or not str(link.get("path") or "").startswith("IMG@/src") \
                            or not link.get("url"):
                        continue
                    try:
                        url = _clean(urljoin(page, str(link["url"])))
                    except ValueError:
                        stats.rejected["bad_url"] += sum(isinstance(link.get(k), str) for k in WAT_TEXT_KEYS)
                        continue
                    for k in WAT_TEXT_KEYS:
                        if isinstance(link.get(k), str):
                            t = builder.add(text=_clean(link[k]), uid=None, url=url, lang=None, key=None, row=row)
                            row += 1
                            if t is not None:
                                yield t
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        stats.rejected["unreadable_file"] += 1
        stats.errors.append({"source": part.path, "after_rows": row, "error": f"{type(e).__name__}: {e}"})
    if (t := builder.flush()) is not None:
        yield t
