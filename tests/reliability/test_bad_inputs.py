"""Bad inputs through the real CLIs: each ends in a counted, reported skip or a one-line refusal that
names the file, never a traceback (DESIGN.md "Rules that hold everywhere")."""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from harness import ENTRIES, curation_inputs, index_factory, manifest, training_inputs

pytestmark = pytest.mark.slow


def refused(capsys, argv: list[str], *needles: str, main=None) -> str:
    """Run a CLI expecting a one-line error (exit 2) that contains every needle."""
    from curation.cli import main as curate

    capsys.readouterr()
    assert (main or curate)(argv) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip() and "it/s]" not in x and "task/s]" not in x]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def ok(capsys, argv: list[str], main=None) -> str:
    from curation.cli import main as curate

    capsys.readouterr()
    rc = (main or curate)(argv)
    out, err = capsys.readouterr()
    assert rc == 0 and "Traceback" not in err, err
    return out


@pytest.fixture(scope="module")
def meta(tmp_path_factory) -> Path:
    return curation_inputs.write_meta(tmp_path_factory.mktemp("meta"))


def build(pool: Path | list, meta: Path, out: Path, *extra: str) -> list[str]:
    pools = [str(p) for p in (pool if isinstance(pool, list) else [pool])]
    return ["build-index", "--pool", *pools, "--metadata", str(meta), "--out", str(out), "--workers", "1", *extra]


# ---- pool files (build-index) -----------------------------------------------------------------------

def test_truncated_parquet_is_refused_by_name(ray_address, meta, tmp_path, capsys):
    good = curation_inputs.write_parquet_pool(tmp_path / "pool", curation_inputs.pool_table(), files=2)
    data = (good / "pool-1.parquet").read_bytes()
    (good / "pool-1.parquet").write_bytes(data[: len(data) // 2])
    refused(capsys, build(good, meta, tmp_path / "o"), "pool-1.parquet", "not a readable Parquet file")
    assert not (tmp_path / "o" / "counts.parquet").exists()


def test_wrong_schema_pool_is_refused(ray_address, meta, tmp_path, capsys):
    pq.write_table(pa.table({"caption": ["a dog"], "uid": ["u"]}), tmp_path / "p.parquet")
    refused(capsys, build(tmp_path / "p.parquet", meta, tmp_path / "o"), "p.parquet", "columns found: caption, uid")


def test_truncated_tar_latin1_text_and_huge_text_are_counted(ray_address, meta, tmp_path, capsys):
    samples = [{"key": f"k{i:03d}", "txt": f"a dog on the beach {i}", "json": {"lang": "en"}} for i in range(20)]
    samples[3]["txt"] = "York " * 200_000  # a 1 MB alt-text
    tar = curation_inputs.write_webdataset(tmp_path / "pool" / "00000.tar", samples)
    with tarfile.open(tar, "a") as t:  # latin-1 bytes in a .txt
        info = tarfile.TarInfo("latin.txt")
        raw = "caf\xe9 au lait with a dog".encode("latin-1")
        info.size = len(raw)
        t.addfile(info, io.BytesIO(raw))
    cut = curation_inputs.write_webdataset(tmp_path / "pool" / "00001.tar", samples)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 100])  # truncated mid-member
    out = tmp_path / "o"
    summary = ok(capsys, build(tmp_path / "pool", meta, out, "--lid", "none"))
    t = manifest(out)["totals"]
    assert t["rejected"]["undecodable_text"] == 1 and t["rejected"]["unreadable_file"] == 1
    assert t["rows_in"] == t["matched"] + t["unmatched"] + sum(t["rejected"].values())
    assert "undecodable_text 1" in summary and "unreadable_file 1" in summary
    errors = manifest(out)["errors"]
    assert len(errors) == 1 and errors[0]["source"].endswith("00001.tar")
    from curation.index import read_matches

    texts = read_matches(out).column("text").to_pylist()
    assert "York " * 199_999 + "York" in texts  # str.strip() of the 1 MB text, matched and kept whole
    assert 20 < len(texts) < 40  # the truncated tar's first samples are kept


def test_symlink_loop_in_pool_folder(ray_address, meta, tmp_path, capsys):
    pool = curation_inputs.write_parquet_pool(tmp_path / "pool", curation_inputs.pool_table(), files=1)
    os.symlink(pool, pool / "loop")
    os.symlink(pool / "self", pool / "self")  # a link to itself
    out = tmp_path / "o"
    ok(capsys, build(pool, meta, out))
    assert [Path(x["path"]).name for x in manifest(out)["inputs"]] == ["pool-0.parquet"]
    assert manifest(out)["totals"]["rows_in"] == len(curation_inputs.POOL_TEXTS)


def test_corrupt_wat_is_counted(ray_address, meta, tmp_path, capsys):
    wat = curation_inputs.write_wat(tmp_path / "pool" / "a.warc.wat.gz", curation_inputs.WAT_PAGES)
    data = wat.read_bytes()
    wat.write_bytes(data[: len(data) - 200])
    out = tmp_path / "o"
    summary = ok(capsys, build(tmp_path / "pool", meta, out, "--lid", "none"))
    assert "unreadable_file 1" in summary and manifest(out)["errors"][0]["source"].endswith("a.warc.wat.gz")


# ---- INDEX and images (balance) --------------------------------------------------------------------

def test_corrupt_jpeg_png_webp_are_counted_not_written(tmp_path, capsys):
    def encoded(i: int, fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (i, 50, 90)).save(buf, format=fmt)
        return buf.getvalue()

    imgs = [index_factory.Img(f"u{i:02d}", [(f"text {i}", "en", [i % 12])], encoded(i, ["JPEG", "PNG", "WEBP"][i % 3]))
            for i in range(30)]
    for i in (0, 1, 2):  # JPEG, PNG, WebP: valid magic bytes, truncated body
        imgs[i].data = imgs[i].data[:24]
    imgs[4].data = b"RIFF\x00\x00\x00\x00WEBPVP8 garbage"
    imgs[5].data = b"not an image at all"
    built = index_factory.make_index(tmp_path, imgs, ENTRIES, sources=2)
    cur = tmp_path / "CUR"
    summary = ok(capsys, ["balance", "--index", str(built.index), "--t", "1000", "--out", str(cur), "--workers", "1",
                          "--shard-size", "8"])
    stats = json.loads((cur / "stats.json").read_text())["totals"]
    assert (stats["kept"], stats["corrupt_images"], stats["written"]) == (30, 5, 25)
    assert "5 corrupt" in summary
    rows = {r["uid"]: r["status"] for r in pq.read_table(cur / "curated.parquet").to_pylist()}
    assert {u for u, s in rows.items() if s == "corrupt"} == {"u00", "u01", "u02", "u04", "u05"}


def test_duplicate_uids_give_one_sample_per_image(tmp_path, capsys):
    imgs = [index_factory.Img(f"u{i % 10}", [(f"text {i}", "en", [i % 12])], index_factory.image_bytes(i % 10))
            for i in range(40)]  # every uid four times, as separate images of the pool
    built = index_factory.make_index(tmp_path, imgs, ENTRIES, sources=2)
    cur = tmp_path / "CUR"
    ok(capsys, ["balance", "--index", str(built.index), "--t", "1000", "--out", str(cur), "--workers", "1"])
    uids = pq.read_table(cur / "curated.parquet").column("uid").to_pylist()
    assert sorted(uids) == [f"u{i}" for i in range(10)]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_bad_counts_are_refused(tmp_path, capsys, bad):
    built = index_factory.make_index(tmp_path, index_factory.synthetic_images(30, ENTRIES), ENTRIES)
    counts = pq.read_table(built.index / "counts.parquet")
    c = counts.column("count").to_numpy().astype(np.float64)
    c[3] = bad
    pq.write_table(counts.set_column(3, "count", pa.array(c)), built.index / "counts.parquet")
    refused(capsys, ["balance", "--index", str(built.index), "--t", "5", "--out", str(tmp_path / "c"),
                     "--workers", "1"], "counts.parquet")


def test_wrong_schema_index_part_is_refused(tmp_path, capsys):
    built = index_factory.make_index(tmp_path, index_factory.synthetic_images(30, ENTRIES), ENTRIES, part_rows=10)
    part = built.index / "matches" / "part-00001.parquet"
    t = pq.read_table(part)
    pq.write_table(t.drop_columns(["entry_ids"]).replace_schema_metadata(t.schema.metadata), part)
    refused(capsys, ["balance", "--index", str(built.index), "--t", "5", "--out", str(tmp_path / "c"),
                     "--workers", "1"], "part-00001.parquet")


def test_truncated_index_part_is_refused(tmp_path, capsys):
    built = index_factory.make_index(tmp_path, index_factory.synthetic_images(30, ENTRIES), ENTRIES, part_rows=10)
    part = built.index / "matches" / "part-00002.parquet"
    part.write_bytes(part.read_bytes()[:100])
    refused(capsys, ["balance", "--index", str(built.index), "--t", "5", "--out", str(tmp_path / "c"),
                     "--workers", "1"], "part-00002.parquet")


def test_bad_metadata_is_refused(ray_address, tmp_path, capsys):
    pool = curation_inputs.write_parquet_pool(tmp_path / "pool", curation_inputs.pool_table(), files=1)
    (tmp_path / "META").mkdir()
    pq.write_table(pa.table({"word": ["dog"]}), tmp_path / "META" / "entries.parquet")
    refused(capsys, build(pool, tmp_path / "META", tmp_path / "o"), "META")
    refused(capsys, build(pool, tmp_path / "nometa", tmp_path / "o2"), "nometa")


# ---- shards (train) --------------------------------------------------------------------------------

def train_argv(tmp_path: Path, spec: str) -> list[str]:
    from training.tokenizer import train_sentencepiece

    train_sentencepiece(training_inputs.caption_corpus(), 200, tmp_path / "tok")
    return ["--shards", spec, "--tokenizer", str(tmp_path / "tok"), "--steps", "3", "--batch-size", "4",
            "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "run")]


def test_training_counts_corrupt_images(tmp_path, capsys):
    import re

    from training.cli import main as train

    spec = training_inputs.write_shards(tmp_path / "curated", 1, 8, extra={3: {"png": b"\x89PNG\r\n\x1a\n broken"},
                                                                            5: {"png": b"\xff\xd8\xff\xe0 cut"}})
    argv = train_argv(tmp_path, spec)
    capsys.readouterr()
    assert train(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and int(re.search(r"(\d+) corrupt\)", err).group(1)) >= 2, err


def test_training_skips_truncated_shard(tmp_path, capsys):
    from training.cli import main as train

    spec = training_inputs.write_shards(tmp_path / "curated", 2, 16)
    shard = tmp_path / "curated" / "shards" / "00001.tar"
    shard.write_bytes(shard.read_bytes()[:20_000])
    ok(capsys, train_argv(tmp_path, spec), main=train)
