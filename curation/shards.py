"""WebDataset shard writing: plain ustar members, byte-for-byte deterministic.

A sample is KEY.<jpg|png|webp> (the image bytes), KEY.txt (the chosen alt-text) and KEY.json. Members
carry fixed metadata (mtime 0, mode 0644, uid/gid 0), so the same samples always give the same bytes.
A shard may be assembled from pieces (runs of members without the end-of-archive blocks), which is how
samples from sources handled by different workers end up in one shard.
"""
from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Iterable

from curation.common import atomic_path

BLOCK = 512
RECORD = 20 * BLOCK
SHARD_DIGITS = 5
KEY_DIGITS = 9


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
    """Write member bytes + end-of-archive atomically; returns the archive size."""
    size = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
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
