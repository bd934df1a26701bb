"""curate captions add: captions land in KEY.json, everything else is unchanged, counts, determinism, resume."""
from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import storage
from core.errors import UserError
from curation.captions import attach, with_caption
from curation.cli import main
from shard_factory import shard_metas, write_shards


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isreg()}


def _captions(path: Path, rows: list[tuple[str, str]]) -> Path:
    pq.write_table(pa.table({"uid": [u for u, _ in rows], "caption": [c for _, c in rows]}), path)
    return path


@pytest.fixture
def curated(tmp_path) -> Path:
    write_shards(tmp_path / "cur", 3, 5)
    return tmp_path / "cur"


def test_attach_adds_captions_and_keeps_everything_else(curated, tmp_path):
    before = {p.name: _members(p) for p in sorted((curated / "shards").glob("*.tar"))}
    rows = [(f"u{i:06d}", f"caption {i}") for i in range(0, 15, 2)] + [("nope", "x"), ("u000000", "second")]
    entry = attach(curated, "vecap", [_captions(tmp_path / "c.parquet", rows)])
    metas = shard_metas(curated)
    assert metas["u000000"]["captions"] == {"vecap": "caption 0"}
    assert "captions" not in metas["u000001"]
    assert entry | {"seconds": 0, "bytes_rewritten": 0} == {
        "captions_rows": 10, "captioned": 8, "uncaptioned": 7, "unknown_uids": 1, "duplicate_uids": 1, "shards": 3,
        "seconds": 0, "bytes_rewritten": 0}
    assert json.loads((curated / "stats.json").read_text())["captions"]["vecap"]["unknown_uids"] == 1
    for name, members in before.items():
        after = _members(curated / "shards" / name)
        assert list(after) == list(members)
        assert all(after[k] == v for k, v in members.items() if not k.endswith(".json"))


def test_sources_accumulate_and_order_does_not_matter(curated, tmp_path):
    a = _captions(tmp_path / "a.parquet", [("u000003", "from a")])
    b = _captions(tmp_path / "b.parquet", [("u000003", "from b")])
    other = tmp_path / "other"
    shutil.copytree(curated, other)
    attach(curated, "a", [a]), attach(curated, "b", [b])
    attach(other, "b", [b]), attach(other, "a", [a])
    assert shard_metas(curated)["u000003"]["captions"] == {"a": "from a", "b": "from b"}
    for shard in (curated / "shards").glob("*.tar"):
        assert shard.read_bytes() == (other / "shards" / shard.name).read_bytes()


def test_reattach_replaces_a_source(curated, tmp_path):
    attach(curated, "vecap", [_captions(tmp_path / "1.parquet", [("u000001", "old"), ("u000002", "old")])])
    attach(curated, "vecap", [_captions(tmp_path / "2.parquet", [("u000002", "new")])])
    metas = shard_metas(curated)
    assert "captions" not in metas["u000001"] and metas["u000002"]["captions"] == {"vecap": "new"}


def test_interrupted_attach_resumes_to_the_same_bytes(curated, tmp_path):
    caps = _captions(tmp_path / "c.parquet", [(f"u{i:06d}", f"c{i}") for i in range(15)])
    clean = tmp_path / "clean"
    shutil.copytree(curated, clean)
    attach(clean, "vecap", [caps])
    last = curated / "shards" / "00002.tar"
    good = last.read_bytes()
    last.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(UserError, match="00002.tar"):
        attach(curated, "vecap", [caps])
    journal = json.loads((curated / "captions" / ".attach-vecap.json").read_text())
    assert sorted(journal["done"]) == ["00000.tar", "00001.tar"]
    last.write_bytes(good)
    attach(curated, "vecap", [caps])
    for shard in (clean / "shards").glob("*.tar"):
        assert shard.read_bytes() == (curated / "shards" / shard.name).read_bytes()


def test_with_caption_removes_and_sorts():
    meta = {"uid": "x", "captions": {"z": "1", "a": "2"}}
    assert list(with_caption(meta, "m", "3")["captions"]) == ["a", "m", "z"]
    assert "captions" not in with_caption({"uid": "x", "captions": {"a": "2"}}, "a", None)


def test_cli_one_line_errors(curated, tmp_path, capsys):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["u1"], "caption": ["c"]}), bad)
    assert main(["captions", "add", str(curated), "--captions", str(bad), "--source", "vecap"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no column(s) uid" in err and "\n" not in err
    assert main(["captions", "add", str(curated), "--captions", str(bad), "--source", "alt"]) == 2
    ok = _captions(tmp_path / "ok.parquet", [("u000001", "c")])
    assert main(["captions", "add", str(curated), "--captions", str(ok), "--source", "vecap"]) == 0
    assert "1 images captioned by vecap" in capsys.readouterr().out


def test_a_shard_replaced_after_attach_is_redone(curated, tmp_path):
    caps = _captions(tmp_path / "c.parquet", [(f"u{i:06d}", f"c{i}") for i in range(15)])
    original = (curated / "shards" / "00001.tar").read_bytes()
    attach(curated, "vecap", [caps])
    (curated / "shards" / "00001.tar").write_bytes(original)  # e.g. rebalanced or re-downloaded
    entry = attach(curated, "vecap", [caps])
    assert entry["captioned"] == 15 and all("captions" in m for m in shard_metas(curated).values())


def test_per_shard_parts_give_the_same_shards_and_counts(curated, tmp_path):
    from curation.captions import attach_locked

    other = tmp_path / "other"
    shutil.copytree(curated, other)
    parts = []
    for s, uids in enumerate([[0, 1, 2], [5, 6, 6, 9], [11]]):
        parts.append(_captions(tmp_path / f"{s:05d}.parquet", [(f"u{i:06d}", f"c{i}") for i in uids]))
    parts[2] = _captions(tmp_path / "00002.parquet", [("u000011", "c11"), ("u000001", "elsewhere")])
    parts.append(_captions(tmp_path / "99999.parquet", [("ghost", "g")]))
    a = attach_locked(curated, "vecap", parts, by_shard=True)
    b = attach(other, "vecap", parts)
    drop = ("seconds", "bytes_rewritten")
    a_counts, b_counts = ({k: v for k, v in e.items() if k not in drop} for e in (a, b))
    assert a_counts == {"captions_rows": 10, "captioned": 7, "uncaptioned": 8, "unknown_uids": 2, "duplicate_uids": 1,
                        "shards": 3}
    # as one file set, u000001's second caption is a repeat of a known uid, not a caption for an unknown one
    assert b_counts == a_counts | {"unknown_uids": 1, "duplicate_uids": 2}
    assert shard_metas(curated)["u000001"]["captions"] == {"vecap": "c1"}
    for shard in (curated / "shards").glob("*.tar"):
        assert shard.read_bytes() == (other / "shards" / shard.name).read_bytes()


def upload(local: Path, url: str) -> None:
    """Copy a local folder's files (not the dot files: locks, journals) under `url`."""
    for p in sorted(local.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            storage.write_bytes(storage.join(url, str(p.relative_to(local))), p.read_bytes())


def _bucket_shards(url: str) -> dict[str, bytes]:
    return {storage.name(u): storage.read_bytes(u) for u in storage.glob_in(storage.join(url, "shards"), "*.tar")}


def _local_shards(curated: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((curated / "shards").glob("*.tar"))}


def _counts(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "seconds"}


ROWS = [(f"u{i:06d}", f"caption {i}") for i in range(0, 15, 2)] + [("nope", "x"), ("u000000", "second")]


@pytest.mark.slow
def test_bucket_attach_equals_local_attach_and_resumes_from_journal(curated, tmp_path, s3):
    caps = _captions(tmp_path / "c.parquet", ROWS)
    upload(curated, s3.url("CUR"))
    storage.write_bytes(s3.url("caps", "c.parquet"), caps.read_bytes())
    local = attach(curated, "vecap", [caps])
    assert main(["captions", "add", s3.url("CUR"), "--captions", s3.url("caps", "c.parquet"), "--source", "vecap"]) == 0
    assert _bucket_shards(s3.url("CUR")) == _local_shards(curated)
    assert _counts(storage.read_json(s3.url("CUR", "stats.json"))["captions"]["vecap"]) == _counts(local)
    names = [storage.name(u) for u in storage.list_files(s3.url("CUR"))]
    assert storage.LOCK_NAME not in names and not any(n.endswith(".tmp") for n in names)
    journal = s3.url("CUR", "captions", ".attach-vecap.journal")
    assert sorted(storage.name(u) for u in storage.list_files(journal)) == ["00000.json", "00001.json", "00002.json"]
    # a shard rewritten but not committed (its journal object lost, as by a kill in between) is redone, same bytes
    storage.remove(storage.join(journal, "00001.json"))
    again = attach(s3.url("CUR"), "vecap", [s3.url("caps", "c.parquet")])
    assert again["bytes_rewritten"] == len(_local_shards(curated)["00001.tar"])
    assert _bucket_shards(s3.url("CUR")) == _local_shards(curated) and _counts(again) | {"bytes_rewritten": 0} == \
        _counts(local) | {"bytes_rewritten": 0}


@pytest.mark.slow
def test_bucket_attach_interrupted_by_a_bad_shard_resumes(curated, tmp_path, s3):
    caps = _captions(tmp_path / "c.parquet", ROWS)
    upload(curated, s3.url("CUR"))
    attach(curated, "vecap", [caps])
    bad = s3.url("CUR", "shards", "00002.tar")
    good = storage.read_bytes(bad)
    storage.write_bytes(bad, b"not a tar at all" * 100)
    with pytest.raises(UserError, match="00002.tar"):
        attach(s3.url("CUR"), "vecap", [str(caps)])
    journal = s3.url("CUR", "captions", ".attach-vecap.journal")
    assert [storage.name(u) for u in storage.list_files(journal)] == ["00000.json", "00001.json"]
    assert not storage.exists(s3.url("CUR", storage.LOCK_NAME))
    storage.write_bytes(bad, good)
    attach(s3.url("CUR"), "vecap", [str(caps)])
    assert _bucket_shards(s3.url("CUR")) == _local_shards(curated)


@pytest.mark.slow
def test_bucket_bad_cases_are_one_line_naming_the_url(curated, tmp_path, s3, capsys):
    caps = _captions(tmp_path / "c.parquet", ROWS)
    upload(curated, s3.url("CUR"))
    cases = [(["s3://no-such-bucket-wc/CUR", "--captions", str(caps)], "s3://no-such-bucket-wc/CUR"),
             ([s3.url("CUR"), "--captions", s3.url("caps", "missing.parquet")], s3.url("caps", "missing.parquet")),
             ([s3.url("nothing"), "--captions", str(caps)], s3.url("nothing"))]
    for argv, url in cases:
        assert main(["captions", "add", *argv, "--source", "vecap"]) == 2
        err = capsys.readouterr().err.strip()
        assert url in err and "\n" not in err and "Traceback" not in err, err
    assert _bucket_shards(s3.url("CUR")) == _local_shards(curated)  # nothing was rewritten


def test_file_and_memory_urls_equal_local(curated, tmp_path):
    caps = _captions(tmp_path / "c.parquet", ROWS)
    other = tmp_path / "other"
    shutil.copytree(curated, other)
    upload(other, "memory://wc-captions/CUR")
    local = attach(curated, "vecap", [caps])
    assert _counts(attach(f"file://{other}", "vecap", [f"file://{caps}"])) == _counts(local)
    assert _local_shards(other) == _local_shards(curated)
    storage.write_bytes("memory://wc-captions/c.parquet", caps.read_bytes())
    try:
        mem = attach("memory://wc-captions/CUR", "vecap", ["memory://wc-captions/c.parquet"])
        assert _counts(mem) == _counts(local)
        assert _bucket_shards("memory://wc-captions/CUR") == _local_shards(curated)
    finally:
        storage.remove("memory://wc-captions")


@pytest.mark.slow
def test_a_large_captions_file_is_not_held_in_memory(curated, tmp_path):
    import tracemalloc

    n = 300_000  # held as a dict: a 52 MB peak; streamed into the on-disk lookup: about 5 MB
    uids = [f"u{i:06d}" for i in range(n)]
    caps = tmp_path / "big.parquet"
    pq.write_table(pa.table({"uid": uids, "caption": [f"a long enough caption number {i}" for i in range(n)]}), caps)
    del uids
    tracemalloc.start()
    try:
        entry = attach(curated, "vecap", [caps])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (entry["captioned"], entry["unknown_uids"], entry["captions_rows"]) == (15, n - 15, n)
    assert shard_metas(curated)["u000007"]["captions"] == {"vecap": "a long enough caption number 7"}
    assert peak < 12e6, f"peak {peak / 1e6:.1f} MB of Python objects"


def test_sqlite_scratch_of_a_killed_attach_is_removed_by_the_next_run(curated, tmp_path, monkeypatch):
    """kill -9 during `curate captions add` left worldclip-captions-*.sqlite in WORLDCLIP_SCRATCH for ever."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from curation.captions import DiskCaptions

    scratch = tmp_path / "scratch"
    n = 300_000
    caps = _captions(tmp_path / "big.parquet", [(f"u{i:06d}", f"caption {i}") for i in range(n)])
    env = {**os.environ, "WORLDCLIP_SCRATCH": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-m", "curation.cli", "captions", "add", str(curated), "--source", "vecap",
                             "--captions", str(caps)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not list(scratch.glob("worldclip-captions-*.sqlite")) and proc.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left = list(scratch.glob("worldclip-captions-*.sqlite"))
    assert len(left) == 1, "the killed run's lookup file should still be there"

    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(scratch))
    live = DiskCaptions()  # another run of this host, still going: its file is kept
    try:
        assert main(["captions", "add", str(curated), "--source", "vecap", "--captions", str(caps)]) == 0
        assert list(scratch.glob("worldclip-captions-*.sqlite")) == [Path(live.path)]
    finally:
        live.close()
    assert shard_metas(curated)["u000007"]["captions"] == {"vecap": "caption 7"}


def test_curated_layout_helpers_have_one_home(curated, tmp_path):
    """CURATED's root, shard listing and shard stems are curation.curated's (captions, score and recaption use
    them); no other module defines its own."""
    import ast

    from curation.curated import curated_root, shard_paths, stem

    root = curated_root(f"file://{curated}")
    assert root == str(curated)
    assert [stem(p) for p in shard_paths(root)] == ["00000", "00001", "00002"]
    with pytest.raises(UserError, match=r"has no shards/\*\.tar: give a CURATED folder"):
        shard_paths(str(tmp_path))
    repo = Path(__file__).resolve().parents[2]
    homes = [f"{f.relative_to(repo)}:{node.name}" for pkg in ("core", "curation", "metadata", "training", "pipelines")
             for f in sorted((repo / pkg).rglob("*.py"))
             for node in ast.walk(ast.parse(f.read_text())) if isinstance(node, ast.FunctionDef)
             and node.name in ("curated_root", "shard_paths", "stem")]
    assert sorted(homes) == ["curation/curated.py:curated_root", "curation/curated.py:shard_paths",
                             "curation/curated.py:stem"]
