"""Every reader, cut at every member boundary and inside every header (not only at random offsets):
pool tar, WAT and Parquet (curation.pool), balance's image reader (curation.images), a training shard
(training.data.read_raw) and an eval shard (training.eval_data). What was read is a prefix of the whole
file's result, and the damage is reported with the file and its byte offset; nothing reads as a clean,
shorter file (issue 17.1: tarfile reads a cut inside a header as the end of the archive)."""
from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from curation import images
from curation.pool import Part, PoolColumns, ReadStats, expand_paths, read_part, resolve_columns
from harness import curation_inputs, training_inputs
from pool_factory import tar_cut_points
from training.data import Unit, read_raw
from training.eval_data import shard_records


def webdataset_pool(tmp_path: Path) -> Path:
    samples = [{"key": f"k{i:02d}", "txt": f"a dog number {i}", "json": {"url": f"http://x/{i}.jpg"}}
               for i in range(6)]
    return curation_inputs.write_webdataset(tmp_path / "whole.tar", samples)


def read_pool(path: Path, fmt: str) -> tuple[list[dict], ReadStats]:
    stats = ReadStats()
    cols = PoolColumns(text=None, uid="uid", url="url", lang=None)
    tables = list(read_part(Part(0, str(path), fmt), cols, stats))
    return (pa.concat_tables(tables).to_pylist() if tables else []), stats


def test_pool_tar_every_cut(tmp_path):
    whole_path = webdataset_pool(tmp_path)
    data = whole_path.read_bytes()
    whole, stats = read_pool(whole_path, "webdataset")
    assert len(whole) == 6 and not stats.rejected
    cut = tmp_path / "cut.tar"
    for point in tar_cut_points(data):
        cut.write_bytes(data[:point])
        rows, stats = read_pool(cut, "webdataset")
        assert rows == whole[:len(rows)], point
        assert stats.rejected == {"unreadable_file": 1}, (point, stats.rejected)  # never a false missing_text
        [err] = stats.errors
        assert err["source"] == str(cut) and "damaged after byte" in err["error"] or "not a tar" in err["error"]


def test_balance_image_reader_every_cut(tmp_path):
    members = [(f"k{i}.jpg", bytes([i]) * (300 + 200 * i)) for i in range(5)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    data = buf.getvalue()
    cut = tmp_path / "cut.tar"
    for point in tar_cut_points(data):
        cut.write_bytes(data[:point])
        got = []
        try:
            for key, payload in images.read_tar_images(str(cut), {f"k{i}" for i in range(5)}):
                got.append((f"{key}.jpg", payload))
            assert got == members, point  # a cut after every wanted image costs nothing
        except images.SourceUnreadable as e:
            assert got == members[:len(got)] and len(got) < 5
            assert f"{5 - len(got)} wanted images lost" in str(e), (point, str(e))


def test_training_and_eval_shard_every_cut(tmp_path):
    spec = training_inputs.write_shards(tmp_path / "curated", 1, 5)
    data = Path(spec).read_bytes()
    whole = [s["__key__"] for s in read_raw(Unit(spec))]
    cut = tmp_path / "cut.tar"
    for point in tar_cut_points(data):
        cut.write_bytes(data[:point])
        damage: list[str] = []
        keys = [s["__key__"] for s in read_raw(Unit(str(cut)), on_damage=damage.append)]
        assert keys == whole[:len(keys)] and len(keys) < len(whole), point
        assert len(damage) == 1 and str(cut) in damage[0], point
        assert "damaged after byte" in damage[0] or "not a tar" in damage[0], damage
        with pytest.raises(UserError, match="cannot read this WebDataset shard"):
            list(shard_records(cut, 0))


def gzip_member_offsets(data: bytes) -> list[int]:
    """Start of each gzip member of a multi-member file."""
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
    return offsets


def test_wat_every_cut(tmp_path):
    pages = [(f"http://s.example/{i}/", [{"path": "IMG@/src", "url": "i.jpg", "alt": f"text {i}"}]) for i in range(6)]
    path = curation_inputs.write_wat(tmp_path / "whole.warc.wat.gz", pages)
    data = path.read_bytes()
    whole, _ = read_pool(path, "wat")
    starts = gzip_member_offsets(data)
    cut = tmp_path / "cut.warc.wat.gz"
    for start, end in zip(starts, starts[1:] + [len(data)]):
        for point in (start + 1, start + 10, start + 40, (start + end) // 2, end - 8, end - 1):
            cut.write_bytes(data[:point])
            rows, stats = read_pool(cut, "wat")
            assert rows == whole[:len(rows)], point
            assert stats.rejected == {"unreadable_file": 1} and "damaged after byte" in stats.errors[0]["error"], point
        cut.write_bytes(data[:end])  # a member boundary: a valid, shorter WARC file (nothing to detect)
        rows, stats = read_pool(cut, "wat")
        assert rows == whole[:len(rows)] and not stats.errors


def test_parquet_every_cut_is_refused_by_name(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": [f"text {i}" for i in range(40)]}), path, row_group_size=10)
    data = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    points = {4, len(data) - 8, len(data) - 4, len(data) - 1}
    for g in range(meta.num_row_groups):
        col = meta.row_group(g).column(0)
        start = col.dictionary_page_offset or col.data_page_offset
        points |= {start, start + 1, start + col.total_compressed_size}
    cut = tmp_path / "cut.parquet"
    for point in sorted(p for p in points if p < len(data)):
        cut.write_bytes(data[:point])
        with pytest.raises(UserError, match=r"cut\.parquet: not a readable Parquet file"):
            resolve_columns(expand_paths([str(cut)]), text=None, uid=None, url=None, image=None, lang=None,
                            lang_required=False)
