"""Pool readers: find the pool's files, cut them into deterministic parts, stream a part as Arrow batches.

Formats (DESIGN.md "Pool"):
- parquet: files, folders (all `*.parquet` below, sorted) or globs; columns named by flags.
- img2dataset: a folder of `NNNNN.parquet` + `NNNNN.tar` (+ `NNNNN_stats.json`); rows with
  status == "success" are texts (column `caption` by default), other statuses are rejected
  "download_failed".
- webdataset: `.tar` files; a sample's text is its `.txt` member, url/uid/lang come from its `.json`.
- wat: Common Crawl `.warc.wat.gz` (curation.wat, FastWARC); every `IMG@/src` link's `alt`, `title` and
  `data-image-title` is one text (as MetaCLIP's parse_wat), the image url resolved against the page's
  WARC-Target-URI. A `wat.paths.gz` listing names WAT files relative to `--pool-base` (curation.listing).

Parts: Parquet and img2dataset files are cut into row ranges of `part_size` rows (known from the
footer); a WAT file larger than WAT_PART_BYTES into compressed byte ranges (a record belongs to the
range its gzip member starts in); a tar or smaller WAT file is one part, read as a stream in batches.
The partition depends only on the sorted file list, the file sizes and `part_size`, so a rerun sees the
same parts (needed for resume). Damaged tars and WATs cost only their tail (core.tars, curation.wat).

Every batch a reader yields has the columns of `BATCH_SCHEMA`; rows it cannot turn into a text are
counted in the reader's `rejected` dict instead, so nothing is dropped silently.
"""
from __future__ import annotations

import glob
import json
import lzma
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core import storage
from core.errors import UserError
from core.tars import TarDamaged, members
from curation.listing import is_listing, listing_urls
from curation.wat import WatDamaged, image_links

BATCH_SCHEMA = pa.schema([
    ("text", pa.string()), ("uid", pa.string()), ("url", pa.string()), ("lang", pa.string()),
    ("key", pa.string()), ("row", pa.int64()),
])
IMAGE_COLUMN_GUESSES = ("image", "jpg", "png", "webp", "image_bytes")
STREAM_BATCH_ROWS = 20_000
WAT_PART_BYTES = 64 << 20  # a larger WAT file is read in parts of about this many compressed bytes
WAT_ROWS_PER_BYTE = 4096  # row numbers of a WAT part start at its first byte times this (> any deflate ratio)


@dataclass(frozen=True)
class PoolFile:
    path: str  # absolute
    format: str  # parquet | img2dataset | webdataset | wat
    num_rows: int | None = None  # known for parquet / img2dataset
    size: int | None = None  # bytes, known for WAT files (cut into byte-range parts when large)


@dataclass(frozen=True)
class Part:
    part: int
    path: str
    format: str
    start: int = 0  # rows of a Parquet file; compressed bytes of a WAT file
    stop: int | None = None  # None: the whole (streamed) file

    @property
    def num_rows(self) -> int | None:
        return None if self.stop is None or self.format == "wat" else self.stop - self.start


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
    rejected: Counter = field(default_factory=Counter)  # rows, by reason
    errors: list = field(default_factory=list)
    skipped_records: Counter = field(default_factory=Counter)  # WAT records without image texts, by kind


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


def _check_img2dataset_dir(path: Path, arg: str) -> None:
    """A folder with NNNNN.parquet + NNNNN.tar pairs but also a .parquet without its tar is refused: read as
    plain Parquet it would fail on "no column 'text'", or count failed downloads as texts."""
    parquets = sorted(path.glob("*.parquet"))
    lone = [p.name for p in parquets if not p.with_suffix(".tar").exists()]
    if lone and len(lone) < len(parquets):
        raise UserError(f"--pool {arg}: looks like an img2dataset output ({len(parquets) - len(lone)} .parquet + .tar "
                        f"pairs) but {lone[0]} has no .tar beside it ({len(lone)} such); restore the missing tar or "
                        "move the stray .parquet out of the folder")


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


def _expand_listing(arg: str, base: str | None, found: dict[str, str]) -> None:
    """A Common Crawl `*.paths.gz` listing -> its files (trusted, not checked one by one) in `found`."""
    for url in listing_urls(arg, base):
        fmt = _format_of_file(url)
        if fmt is None:
            raise UserError(f"--pool {arg}: lists {url}, not a .warc.wat.gz, .tar or .parquet file")
        found[url if not storage.is_local(url) else str(storage.local_path(url).resolve())] = fmt


def expand_paths(paths: list[str], base: str | None = None) -> list[tuple[str, str]]:
    """Pool arguments -> sorted, de-duplicated (file, format) pairs; raises UserError on a bad path.

    Local files are absolute paths, objects are URLs (core.storage). A `*.paths.gz` listing names its
    files relative to `base` (--pool-base)."""
    found: dict[str, str] = {}
    for arg in paths:
        if is_listing(arg):
            _expand_listing(arg, base, found)
            continue
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
                _check_img2dataset_dir(p, arg)
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


def parquet_schema(path: str | Path) -> tuple[pa.Schema, int]:
    try:
        f = storage.parquet_file(str(path))
        return f.schema_arrow, f.metadata.num_rows
    except Exception as e:  # pyarrow raises several types for a bad footer
        raise UserError(f"{path}: not a readable Parquet file ({e}); remove it from --pool or replace it") from e


def _binary_columns(schema: pa.Schema) -> set[str]:
    return {f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)}


def _is_text(t: pa.DataType, integers: bool) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (integers and pa.types.is_integer(t))


def _check_type(path: Path, schema: pa.Schema, col: str | None, flag: str) -> None:
    """A text/url/lang column must hold strings (a uid column may hold integers): else a UserError naming
    the file, the column and its type, rather than rows cast to strings or lost from the accounting."""
    if col is None or col not in schema.names:
        return
    t = schema.field(col).type
    if not _is_text(t, integers=flag == "--uid-column"):
        raise UserError(f"{path}: column {col!r} has type {t}, not string ({flag}); convert it to strings "
                        f"or name another column with {flag.split(' ')[0]}")


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
            size = storage.fingerprint(str(path))["size"] if fmt == "wat" else None
            pool_files.append(PoolFile(str(path), fmt, size=size))
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
        for col, flag in ((text_col, "--text-column"), (uid or "uid", "--uid-column"), (url or "url", "--url-column"),
                          (lang, "--lid column:NAME")):
            _check_type(path, schema, col, flag)
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


def make_parts(files: list[PoolFile], part_size: int, wat_part_bytes: int = WAT_PART_BYTES) -> list[Part]:
    """Deterministic partition: row ranges of part_size for Parquet-backed files, compressed byte ranges of
    wat_part_bytes for large WAT files (each record goes to the part where its gzip member starts), one part
    per other stream file."""
    parts: list[Part] = []
    for f in files:
        if f.format == "wat" and f.size and f.size > wat_part_bytes:
            for lo in range(0, f.size, wat_part_bytes):
                parts.append(Part(len(parts), f.path, f.format, lo, min(lo + wat_part_bytes, f.size)))
            continue
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
        f = storage.parquet_file(part.path)
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
    rows = pa.array(np.arange(first_row, first_row + t.num_rows, dtype=np.int64))
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
    """Samples by key in order of first appearance (members of one key need not be adjacent). On damage the
    samples read before it are kept, except the last one when the damage may have cut its members (its .json:
    url and uid); the file's error names the tar byte offset."""
    samples: dict[str, dict[str, bytes]] = {}
    header = [None]  # key of the last member header read

    def want(m: tarfile.TarInfo) -> bool:
        header[0], ext = _sample_key(m.name)
        return ext in ("txt", "json")

    try:
        with storage.open_input(part.path) as f:
            for member, data in members(f, want):
                key, ext = _sample_key(member.name)
                samples.setdefault(key, {})[ext] = data or b""
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        if samples and header[0] == next(reversed(samples)):
            del samples[header[0]]
        stats.rejected["unreadable_file"] += 1
        stats.errors.append({"source": part.path, "after_samples": len(samples),
                             "error": str(e) if isinstance(e, TarDamaged) else f"{type(e).__name__}: {e}"})
    builder = _BatchBuilder()
    for row, (key, sample) in enumerate(samples.items()):
        if (t := _webdataset_row(key, sample, row, cols, stats, builder)) is not None:
            yield t
    if (t := builder.flush()) is not None:
        yield t


def _webdataset_row(key: str, sample: dict[str, bytes], row: int, cols: PoolColumns, stats: ReadStats,
                    builder: _BatchBuilder) -> pa.Table | None:
    """Add one sample's text to `builder` (or count why not); returns a full batch when one is ready."""
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


def _read_wat(part: Part, cols: PoolColumns, stats: ReadStats) -> Iterator[pa.Table]:
    builder, row = _BatchBuilder(), part.start * WAT_ROWS_PER_BYTE  # unique and ordered across a file's parts
    try:
        with storage.open_input(part.path) as f:
            for text, url in image_links(f, stats.skipped_records, part.start, part.stop):
                if url is None:
                    stats.rejected["bad_url"] += 1
                    continue
                t = builder.add(text=text, uid=None, url=url, lang=None, key=None, row=row)
                row += 1
                if t is not None:
                    yield t
    except (OSError, WatDamaged) as e:
        stats.rejected["unreadable_file"] += 1
        stats.errors.append({"source": part.path, "after_rows": row - part.start * WAT_ROWS_PER_BYTE,
                             "error": str(e) if isinstance(e, WatDamaged)
                             else f"{type(e).__name__}: {e}"})
    if (t := builder.flush()) is not None:
        yield t
