"""Image bytes from the pool's sources, each source read once, streaming.

Where an INDEX row's image is (INDEX contract): an img2dataset folder's `NNNNN.parquet` source has
its images as members `<key>.<ext>` of the sibling `NNNNN.tar`; a WebDataset tar source has them as
members `<key>.<ext>`; a Parquet source with an image column has the bytes at `row` of that column
(binary, or a struct with a `bytes` field as Hugging Face datasets write); anything else (WAT, Parquet
without images) is URL-only and needs `curate download`.

A source whose content is damaged (a truncated tar, a file that is not a tar, a corrupt Parquet file or
row group) raises or yields `SourceUnreadable` at the damage point, after every image read before it;
a source that does not exist (or may not be read) raises the OSError itself: that is a setup problem
(a moved or unmounted pool), not damage, and the caller refuses the run.
"""
from __future__ import annotations

import bisect
import io
import lzma
import tarfile
import zlib
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from core import storage
from core.tars import TarDamaged
from core.tars import members as tar_members

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
KIND_TAR = "tar"
KIND_PARQUET = "parquet"
KIND_URL = "url"
SETUP_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
_TAR_DAMAGE = (OSError, EOFError, tarfile.TarError, zlib.error, lzma.LZMAError)


class SourceUnreadable(Exception):
    """A pool source's content is damaged from some point on; the message says where and how."""


def source_kind(source: str, image_column: str | None, tars_expected: bool = False) -> tuple[str, str]:
    """(kind, file to read) for a source path: tar members, a Parquet bytes column, or URL-only.

    tars_expected (an img2dataset pool): a Parquet source's images are in its sibling tar even if that
    tar is not there now, so a moved tar is reported rather than taken for a URL-only source.
    """
    if source.endswith(".tar"):
        return KIND_TAR, source
    if source.endswith(".parquet"):
        if image_column:
            return KIND_PARQUET, source
        tar = source[: -len(".parquet")] + ".tar"
        if tars_expected or storage.exists(tar):
            return KIND_TAR, tar
    return KIND_URL, source


def _sample_key(name: str) -> tuple[str, str]:
    """WebDataset convention: key = path up to the first dot of the basename; the rest is the extension."""
    d, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{d}/{stem}" if d else stem), ext.lower()


def read_tar_images(path: str, keys: set[str]) -> Iterator[tuple[str, bytes]]:
    """(key, image bytes) for each wanted key, one streaming pass that stops once all are found.

    Raises SourceUnreadable where the archive is damaged (after yielding every image before that point),
    including a tar cut at a member boundary or inside a header, which tarfile itself reads as a clean end;
    the message has the tar byte offset and the number of wanted images lost.
    """
    remaining = set(keys)

    def wanted(m: tarfile.TarInfo) -> bool:
        key, ext = _sample_key(m.name)
        return key in remaining and ext in IMAGE_EXTS

    try:
        with storage.open_input(path) as f:
            for member, data in tar_members(f, wanted):
                if data is not None:
                    key = _sample_key(member.name)[0]
                    yield key, data
                    remaining.discard(key)
                if not remaining:
                    return
    except SETUP_ERRORS:
        raise
    except _TAR_DAMAGE as e:
        raise SourceUnreadable(f"{e}; {len(remaining)} wanted images lost" if isinstance(e, TarDamaged)
                               else f"{type(e).__name__}: {e}") from e


def _cell_bytes(value) -> bytes | None:
    if isinstance(value, dict):
        value = value.get("bytes")
    return value if isinstance(value, (bytes, bytearray)) else None


def read_parquet_images(path: str, column: str, rows: set[int], batch_rows: int = 1024
                        ) -> Iterator[tuple[int, bytes | None | SourceUnreadable]]:
    """(row, image bytes or None) for each wanted row, streaming only the row groups that hold them.

    A file that cannot be opened as Parquet (or lacks `column`) raises SourceUnreadable; a row group that
    cannot be read yields a SourceUnreadable for each of its wanted rows not read yet, and reading goes on
    with the next row group (row groups are independent, so nothing readable is lost).
    """
    try:
        f = storage.parquet_file(path)
        if column not in f.schema_arrow.names:
            raise SourceUnreadable(f"no image column {column!r} (columns: {', '.join(f.schema_arrow.names)})")
    except SETUP_ERRORS:
        raise
    except (OSError, pa.ArrowException) as e:
        raise SourceUnreadable(f"not a readable Parquet file ({type(e).__name__}: {e})") from e
    wanted = sorted(rows)
    pos = 0
    for g in range(f.metadata.num_row_groups):
        n = f.metadata.row_group(g).num_rows
        if _range_hits(wanted, pos, pos + n):
            yield from _row_group_images(f, g, pos, n, column, wanted, batch_rows)
        pos += n


def _row_group_images(f: pq.ParquetFile, g: int, start: int, n: int, column: str, wanted: list[int],
                      batch_rows: int) -> Iterator[tuple[int, bytes | None | SourceUnreadable]]:
    row = start
    try:
        for batch in f.iter_batches(batch_size=batch_rows, row_groups=[g], columns=[column]):
            hits = _range_hits(wanted, row, row + batch.num_rows)
            if hits:
                col = batch.column(0)
                for r in hits:
                    yield r, _cell_bytes(col[r - row].as_py())
            row += batch.num_rows
    except SETUP_ERRORS:
        raise
    except (OSError, pa.ArrowException) as e:
        err = SourceUnreadable(f"row group {g} (rows {start}-{start + n - 1}) unreadable ({type(e).__name__}: {e})")
        for r in _range_hits(wanted, row, start + n):
            yield r, err


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


def is_complete(data: bytes, ext: str) -> bool:
    """Whether JPEG/PNG/WebP bytes reach their format's end, so a download cut short is caught cheaply
    (PIL's verify() does not read a JPEG's scan data at all, nor a PNG's IEND CRC). Bytes after the end
    (padding, appended data) are allowed."""
    if ext == "jpg":
        sos = _jpeg_scan_start(data)
        return sos is not None and data.rfind(b"\xff\xd9", sos) != -1
    if ext == "png":
        return data.rfind(b"\x00\x00\x00\x00IEND\xaeB`\x82", 8) != -1
    if ext == "webp":
        return len(data) >= 8 + int.from_bytes(data[4:8], "little")
    return True


def _jpeg_scan_start(data: bytes) -> int | None:
    """Position of the first start-of-scan (FFDA) segment, found by walking the marker segments before it
    (metadata such as an EXIF thumbnail may hold FFD9 bytes of its own); None if the headers are cut."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xDA:
            return pos
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def checked_image(data: bytes | None) -> tuple[bytes, str] | None:
    """(bytes, ext) ready for a shard, or None if PIL cannot open and verify them or they are cut short.

    JPEG, PNG and WebP keep their original bytes (checked by PIL's verify() plus `is_complete`, without
    decoding); other formats PIL reads (GIF, BMP, TIFF) are decoded and re-encoded to PNG so every shard
    member is one OpenCLIP decodes (the decode catches their truncation).
    """
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        ext = image_format(data)
        if ext is not None:
            return (bytes(data), ext) if is_complete(data, ext) else None
        with Image.open(io.BytesIO(data)) as im:
            buf = io.BytesIO()
            im.convert("RGBA" if "A" in im.getbands() else "RGB").save(buf, format="PNG")
            return buf.getvalue(), "png"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
