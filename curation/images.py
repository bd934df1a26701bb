"""Image bytes from the pool's sources, each source read once, streaming.

Where an INDEX row's image is (INDEX contract): an img2dataset folder's `NNNNN.parquet` source has
its images as members `<key>.<ext>` of the sibling `NNNNN.tar`; a WebDataset tar source has them as
members `<key>.<ext>`; a Parquet source with an image column has the bytes at `row` of that column
(binary, or a struct with a `bytes` field as Hugging Face datasets write); anything else (WAT, Parquet
without images) is URL-only and needs `curate download`.
"""
from __future__ import annotations

import bisect
import io
import tarfile
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
KIND_TAR = "tar"
KIND_PARQUET = "parquet"
KIND_URL = "url"


def source_kind(source: str, image_column: str | None) -> tuple[str, str]:
    """(kind, file to read) for a source path: tar members, a Parquet bytes column, or URL-only."""
    p = Path(source)
    if p.suffix == ".tar":
        return KIND_TAR, source
    if p.suffix == ".parquet":
        if image_column:
            return KIND_PARQUET, source
        if p.with_suffix(".tar").exists():
            return KIND_TAR, str(p.with_suffix(".tar"))
    return KIND_URL, source


def _sample_key(name: str) -> tuple[str, str]:
    """WebDataset convention: key = path up to the first dot of the basename; the rest is the extension."""
    d, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{d}/{stem}" if d else stem), ext.lower()


def read_tar_images(path: str, keys: set[str]) -> Iterator[tuple[str, bytes]]:
    """(key, image bytes) for each wanted key, one streaming pass that stops once all are found."""
    remaining = set(keys)
    with tarfile.open(path, mode="r|*") as tar:
        for member in tar:
            if not remaining:
                break
            if not member.isfile():
                continue
            key, ext = _sample_key(member.name)
            if key in remaining and ext in IMAGE_EXTS:
                f = tar.extractfile(member)
                yield key, f.read()
                remaining.discard(key)


def _cell_bytes(value) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("bytes")
    return value if isinstance(value, (bytes, bytearray)) else None


def read_parquet_images(path: str, column: str, rows: set[int], batch_rows: int = 1024
                        ) -> Iterator[tuple[int, bytes | None]]:
    """(row, image bytes or None) for each wanted row, streaming only the row groups that hold them."""
    f = pq.ParquetFile(path)
    if column not in f.schema_arrow.names:
        raise KeyError(f"{path} has no image column {column!r}")
    wanted = sorted(rows)
    groups, pos, g_start = [], 0, []
    for g in range(f.metadata.num_row_groups):
        n = f.metadata.row_group(g).num_rows
        if _range_hits(wanted, pos, pos + n):
            groups.append(g)
            g_start.append(pos)
        pos += n
    for g, start in zip(groups, g_start):
        row = start
        for batch in f.iter_batches(batch_size=batch_rows, row_groups=[g], columns=[column]):
            hits = _range_hits(wanted, row, row + batch.num_rows)
            if hits:
                col = batch.column(0)
                for r in hits:
                    yield r, _cell_bytes(col[r - row].as_py())
            row += batch.num_rows


def _range_hits(sorted_rows: list[int], lo: int, hi: int) -> list[int]:
    return sorted_rows[bisect.bisect_left(sorted_rows, lo):bisect.bisect_left(sorted_rows, hi)]


def image_format(data: bytes) -> str | None:
    """File extension from the magic bytes (jpg, png, webp), else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def checked_image(data: bytes | None) -> tuple[bytes, str] | None:
    """(bytes, ext) ready for a shard, or None if PIL cannot open and verify them.

    JPEG, PNG and WebP keep their original bytes; other formats PIL reads (GIF, BMP, TIFF) are
    re-encoded to PNG so every shard member is one OpenCLIP decodes.
    """
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        ext = image_format(data)
        if ext is not None:
            return bytes(data), ext
        with Image.open(io.BytesIO(data)) as im:
            buf = io.BytesIO()
            im.convert("RGBA" if "A" in im.getbands() else "RGB").save(buf, format="PNG")
            return buf.getvalue(), "png"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
