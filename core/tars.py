"""Streaming tar reading that tells a cut-off or damaged archive from a whole one.

Python's `tarfile` ends iteration quietly at a header it cannot parse, at a short final block and at
the end of the file, so a tar cut inside a header, at a member boundary or inside data it skipped
looks complete. `members` reads the same stream and, where `tarfile` stops, requires an
end-of-archive block (512 zero bytes); anything else raises `TarDamaged` with the byte offset in the
(decompressed) tar stream. Compressed tars (gzip, bzip2, xz) are decompressed here, so a cut
compressed stream is damage too.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from typing import BinaryIO, Callable, Iterator

BLOCK = tarfile.BLOCKSIZE
_DAMAGE = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
_WINDOW = 1 << 16  # bytes kept behind the read position: more than tarfile's read-ahead (RECORDSIZE)


class TarDamaged(tarfile.ReadError):
    """The archive is cut off or damaged after `offset` (bytes into the uncompressed tar stream)."""

    def __init__(self, offset: int, what: str):
        where = f"damaged after byte {offset}" if offset else "not a tar, or damaged in its first member"
        super().__init__(f"{where} ({what})")
        self.offset = offset


class _Tail:
    """A read-only stream that counts the bytes read and keeps the last `_WINDOW` of them."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.pos, self.tail = raw, 0, b""

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.pos += len(data)
        self.tail = (self.tail + data)[-_WINDOW:]
        return data

    def block_at(self, offset: int) -> bytes:
        """Up to BLOCK bytes of the stream from `offset`, reading on if needed (b"" if long gone)."""
        while self.pos < offset + BLOCK and self.read(offset + BLOCK - self.pos):
            pass
        start = offset - (self.pos - len(self.tail))
        return self.tail[start:start + BLOCK] if start >= 0 else b""


def _decompressed(f: BinaryIO) -> BinaryIO:
    magic = f.read(6)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if magic[:3] == b"BZh":
        return bz2.BZ2File(f)
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(f)
    return f


def _data(tar: tarfile.TarFile, m: tarfile.TarInfo) -> bytes:
    """The bytes of regular member `m`, read straight from the stream the header was just read from (tarfile's
    extractfile wraps every member in two file objects; sparse members still go through it)."""
    if m.sparse is not None:
        return tar.extractfile(m).read()
    data = tar.fileobj.read(m.size)
    if len(data) != m.size:
        raise tarfile.ReadError("unexpected end of data")
    return data


def members(f: BinaryIO, want: Callable[[tarfile.TarInfo], bool]) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """(member, data) for each regular file member in order; data only where `want(member)`, else None.

    Every kind of damage (a cut, a bad header, a missing end-of-archive block, a broken compressed
    stream, an empty file) raises TarDamaged with the offset after the last whole member.
    """
    stream = _Tail(_decompressed(f))
    offset = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                offset = m.offset  # every member before this header is whole
                if m.isfile():
                    yield m, _data(tar, m) if want(m) else None
                tar.members = []  # a stream holds every header read otherwise
            offset = tar.offset
    except _DAMAGE as e:
        raise TarDamaged(offset, f"{type(e).__name__}: {e}") from e
    block = stream.block_at(offset)
    if len(block) < BLOCK:
        raise TarDamaged(offset, "no end-of-archive block: the file is cut off")
    if block.count(0) != BLOCK:
        raise TarDamaged(offset, "unreadable member header where the end-of-archive block should be")
