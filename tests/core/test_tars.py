"""core.tars: a tar cut anywhere before its end-of-archive block is damage, with the byte offset."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile

import pytest

from core.tars import TarDamaged, members
from pool_factory import tar_cut_points


def tar_bytes(n: int = 4, fmt: int = tarfile.USTAR_FORMAT, long_names: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i in range(n):
            for ext in ("jpg", "txt"):
                data = bytes([i]) * (300 + 400 * i)
                info = tarfile.TarInfo(("d" * 120 + "/" if long_names else "") + f"k{i}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read(data: bytes, want=lambda m: True) -> list[str]:
    return [m.name for m, _ in members(io.BytesIO(data), want)]


@pytest.mark.parametrize("fmt,long_names", [(tarfile.USTAR_FORMAT, False), (tarfile.GNU_FORMAT, True),
                                            (tarfile.PAX_FORMAT, True)])
@pytest.mark.parametrize("want_data", [True, False])
def test_every_cut_is_damage_with_offset(fmt, long_names, want_data):
    data = tar_bytes(fmt=fmt, long_names=long_names)
    names = read(data)
    assert len(names) == 8
    for cut in tar_cut_points(data):
        got = []
        with pytest.raises(TarDamaged) as e:
            for m, _ in members(io.BytesIO(data[:cut]), lambda m: want_data):
                got.append(m.name)
        assert got == names[:len(got)]
        assert e.value.offset <= cut, (cut, str(e.value))
        assert ((f"damaged after byte {e.value.offset}" in str(e.value)) if e.value.offset
                else "not a tar" in str(e.value))


def test_today_tarfile_misses_a_cut_inside_a_header():
    """The hole: tarfile reads a tar cut inside the third member's header as a clean, shorter archive."""
    data = tar_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        third = tar.getmembers()[2].offset
    with tarfile.open(fileobj=io.BytesIO(data[:third + 200]), mode="r|") as tar:
        assert len([m.name for m in tar]) == 2
    with pytest.raises(TarDamaged, match=f"damaged after byte {third} "):
        read(data[:third + 200])


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_tars_whole_and_cut(compress):
    data = tar_bytes()
    packed = compress(data)
    assert len(read(packed)) == 8
    damaged = 0
    for cut in range(1, len(packed), max(len(packed) // 40, 1)):
        try:  # a cut inside the compressed zero padding after the end block loses nothing
            assert len(read(packed[:cut])) == 8
        except TarDamaged:
            damaged += 1
    assert damaged >= 30


def test_bytes_after_the_end_block_are_fine_garbage_instead_of_it_is_not():
    data = tar_bytes()
    assert len(read(data + b"trailing junk" * 100)) == 8
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        m = tar.getmembers()[-1]
        end = m.offset_data + -(-m.size // 512) * 512
    with pytest.raises(TarDamaged, match="unreadable member header"):
        read(data[:end] + b"\x01" * 2048)
    with pytest.raises(TarDamaged, match="not a tar"):
        read(b"")
