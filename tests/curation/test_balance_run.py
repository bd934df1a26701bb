"""`curate balance` end to end on small INDEX folders: shards, determinism, resume, bad input."""
import json
import shutil

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from core.errors import UserError
from curation import balance_run, cli, shards
from curation.balance import entry_probabilities
from curation.balance_run import run_balance
from index_factory import Img, entries_table, image_bytes, make_index, repart, synthetic_images
from training.data import Curation

ENTRIES = entries_table({"en": 12, "de": 8, "ja": 5})


def shard_bytes(cur):
    return {p.name: p.read_bytes() for p in sorted((cur / "shards").glob("*.tar"))}


def read_samples(cur):
    tars = sorted(str(p) for p in (cur / "shards").glob("*.tar"))
    return list(wds.WebDataset(tars, shardshuffle=False).decode())


def interrupt_write_group(monkeypatch, on_call: int):
    """Make shards.write_group raise KeyboardInterrupt (a Ctrl-C) on its `on_call`-th call; returns the real one."""
    real, calls = shards.write_group, []

    def crash(*args, **kw):
        calls.append(1)
        if len(calls) == on_call:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(shards, "write_group", crash)
    return real


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["webdataset", "img2dataset", "parquet"])
def test_shards_read_back_with_every_field(tmp_path, kind):
    built = make_index(tmp_path, synthetic_images(120, ENTRIES), ENTRIES, kind=kind, sources=3)
    cur = tmp_path / "CUR"
    stats = run_balance(built.index, cur, t=15, shard_size=16, workers=1)
    curated = pq.read_table(cur / "curated.parquet").to_pylist()
    assert 0 < len(curated) < 120 and stats["totals"]["kept"] == len(curated) == stats["totals"]["written"]
    names = sorted(p.name for p in (cur / "shards").glob("*.tar"))
    assert names == [f"{i:05d}.tar" for i in range(-(-len(curated) // 16))]
    samples = read_samples(cur)
    assert len(samples) == len(curated)
    image_of = {uid: data for uid, data in built.samples.values()}
    for s, row in zip(samples, curated):
        assert "." not in s["__key__"] and s["__key__"] == row["key"]
        meta = s["json"]
        assert meta == {"uid": row["uid"], "url": row["url"], "lang": row["lang"], "entry_ids": row["entry_ids"],
                        "text": row["text"], "texts": [[x["text"], x["lang"], x["entry_ids"]] for x in row["texts"]]}
        assert s["txt"] == row["text"] and s["png"] == image_of[row["uid"]]
        assert row["status"] == "written"
    counts = [sum(1 for r in curated if r["shard"] == k) for k in range(len(names))]
    assert counts[:-1] == [16] * (len(names) - 1)
    assert set(stats["per_lang"]) == {"en", "de", "ja"}
    sizes = json.loads((cur / "shards" / "sizes.json").read_text())
    assert sizes == {name: n for name, n in zip(names, counts)}
    for name in ("thresholds.parquet", "stats.json", "plots/language_shares.png", "plots/rank_count_en.png"):
        assert (cur / name).exists(), name
    assert not (cur / ".work").exists()


@pytest.mark.slow
def test_forked_workers_give_the_in_process_output(tmp_path, monkeypatch):
    """--workers 2 without --ray-address forks (before this module's Ray starts: an initialised Ray is reused)."""
    from curation import executor, fork_pool

    built = make_index(tmp_path, synthetic_images(400, ENTRIES, seed=5), ENTRIES, sources=4, part_rows=90)
    a, b, forks, real = tmp_path / "A", tmp_path / "B", [], fork_pool.run
    run_balance(built.index, a, t=30, shard_size=25, workers=1, rows_per_bucket=100)
    monkeypatch.setattr(fork_pool, "run", lambda *x, **kw: forks.append(kw["n"]) or real(*x, **kw))
    monkeypatch.setattr(executor, "ensure_ray", lambda *x: pytest.fail("a local --workers 2 run started Ray"))
    run_balance(built.index, b, t=30, shard_size=25, workers=2, rows_per_bucket=100)
    assert forks == [2, 2, 2]  # scatter, select, shards
    assert pq.read_table(a / "curated.parquet").equals(pq.read_table(b / "curated.parquet"))
    assert shard_bytes(a) == shard_bytes(b) and len(shard_bytes(a)) > 3


@pytest.mark.slow
def test_same_output_for_any_worker_count_and_part_size(tmp_path, ray_address):
    built = make_index(tmp_path, synthetic_images(400, ENTRIES, seed=5), ENTRIES, sources=4, part_rows=90)
    other = repart(built.index, tmp_path / "INDEX2", part_rows=37)
    a, b = tmp_path / "A", tmp_path / "B"
    run_balance(built.index, a, t=30, shard_size=25, workers=1, rows_per_bucket=100)  # 16 buckets, in process
    run_balance(other, b, t=30, shard_size=25, workers=2)  # one bucket, Ray tasks
    assert pq.read_table(a / "curated.parquet").equals(pq.read_table(b / "curated.parquet"))
    assert shard_bytes(a) == shard_bytes(b) and len(shard_bytes(a)) > 3
    c = tmp_path / "C"
    run_balance(other, c, t=30, shard_size=25, workers=2, seed=1)
    assert set(pq.read_table(c / "curated.parquet").column("uid").to_pylist()) != \
        set(pq.read_table(a / "curated.parquet").column("uid").to_pylist())


@pytest.mark.slow
def test_resume_after_interruption_gives_identical_output(tmp_path, monkeypatch):
    built = make_index(tmp_path, synthetic_images(200, ENTRIES, seed=2), ENTRIES, sources=4)
    ref = tmp_path / "REF"
    real = shards.write_group
    seen = []
    monkeypatch.setattr(shards, "write_group", lambda *a, **k: (seen.append(a), real(*a, **k))[1])
    run_balance(built.index, ref, t=20, shard_size=10, workers=1)
    total_groups = len(seen)
    assert total_groups >= 3
    cur = tmp_path / "CUR"
    interrupt_write_group(monkeypatch, on_call=2)
    with pytest.raises(KeyboardInterrupt):
        run_balance(built.index, cur, t=20, shard_size=10, workers=1)
    assert not json.loads((cur / "manifest.json").read_text())["complete"]
    done = sorted((cur / "shards").glob("*.tar"))
    assert done and not list((cur / "shards").glob(".*.tmp"))
    (cur / "shards" / ".00099.tar.abc.tmp").write_bytes(b"half-written")  # as a kill -9 would leave
    redone = {"scatter_part": 0, "select_bucket": 0, "write_group": 0}
    for name in redone:
        module = shards if name == "write_group" else balance_run
        fn = real if name == "write_group" else getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _fn=fn, _n=name, **k: (redone.__setitem__(_n, redone[_n] + 1), _fn(*a, **k))[1])
    run_balance(built.index, cur, t=20, shard_size=10, workers=1)
    assert redone == {"scatter_part": 0, "select_bucket": 0, "write_group": total_groups - 1}
    assert shard_bytes(cur) == shard_bytes(ref)
    assert pq.read_table(cur / "curated.parquet").equals(pq.read_table(ref / "curated.parquet"))
    assert json.loads((cur / "manifest.json").read_text())["complete"]


@pytest.mark.slow
def test_corrupt_and_missing_images_are_counted_and_skipped(tmp_path):
    imgs = [Img(f"u{i}", [(f"text {i}", "en", [i % 12])], image_bytes(i)) for i in range(30)]
    imgs[3].data = b"\xff\xd8\xff garbage, not a jpeg"
    imgs[7].data = image_bytes(7)[:30]  # truncated png
    imgs[11].data = None  # no image member in the tar
    built = make_index(tmp_path, imgs, ENTRIES, sources=2)
    cur = tmp_path / "CUR"
    stats = run_balance(built.index, cur, t=1000, shard_size=8, workers=1)
    assert stats["totals"]["kept"] == 30
    totals = stats["totals"]
    assert (totals["corrupt_images"], totals["missing_images"], totals["written"]) == (2, 1, 27)
    status = {r["uid"]: (r["status"], r["shard"]) for r in pq.read_table(cur / "curated.parquet").to_pylist()}
    assert (status["u3"], status["u7"], status["u11"]) == (("corrupt", None), ("corrupt", None), ("missing", None))
    assert len(read_samples(cur)) == 27


@pytest.mark.slow
def test_online_writes_everything_and_training_inputs(tmp_path):
    built = make_index(tmp_path, synthetic_images(150, ENTRIES, seed=4), ENTRIES, sources=2)
    cur = tmp_path / "CUR"
    stats = run_balance(built.index, cur, t=15, shard_size=50, workers=1, online=True)
    curated = pq.read_table(cur / "curated.parquet")
    assert curated.num_rows == 150 == len(read_samples(cur))
    assert 0 < stats["totals"]["kept"] == sum(curated.column("keep").to_pylist()) < 150
    conf = json.loads((cur / "curation.json").read_text())
    counts = pq.read_table(cur / "counts.parquet")
    assert conf["online"] and conf["t"] == 15 and conf["seed"] == 0 and conf["counts"] == "counts.parquet"
    p_entry, th = entry_probabilities(counts, t=conf["t"])
    assert conf["thresholds"] == th and counts.column_names == ["entry_id", "lang", "count"]
    metas = [s["json"] for s in read_samples(cur)]
    online = Curation(p_entry, conf["seed"])  # training's draw (its first pass: tests/training/test_online_offline.py)
    keep, choice = online.decide([m["uid"] for m in metas], [m["texts"] for m in metas], epoch=0)
    assert keep.tolist() == curated.column("keep").to_pylist()
    assert [m["texts"][c][0] for m, c in zip(metas, choice)] == curated.column("text").to_pylist()
    keep1, _ = online.decide([m["uid"] for m in metas], [m["texts"] for m in metas], epoch=1)
    assert keep1.tolist() != keep.tolist() and abs(int(keep1.sum()) - int(keep.sum())) < 40


def test_bad_index_inputs(tmp_path):
    built = make_index(tmp_path, synthetic_images(40, ENTRIES), ENTRIES, part_rows=20)
    manifest = json.loads((built.index / "manifest.json").read_text())
    with pytest.raises(UserError, match="t must be a finite number > 0"):
        run_balance(built.index, tmp_path / "o1", t=0, workers=1)
    (built.index / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(UserError, match="incomplete"):
        run_balance(built.index, tmp_path / "o2", t=5, workers=1)
    (built.index / "manifest.json").write_text(json.dumps(manifest))
    part = built.index / "matches" / "part-00001.parquet"
    part.rename(tmp_path / "moved.parquet")
    with pytest.raises(UserError, match="missing.*part-00001"):
        run_balance(built.index, tmp_path / "o3", t=5, workers=1)
    (tmp_path / "moved.parquet").rename(part)
    t = pq.read_table(part)
    pq.write_table(t.replace_schema_metadata({"worldclip.metadata_fingerprint": "0" * 64}), part)
    with pytest.raises(UserError, match="another metadata version"):
        run_balance(built.index, tmp_path / "o4", t=5, workers=1)
    with pytest.raises(UserError, match="not an INDEX"):
        run_balance(tmp_path / "nowhere", tmp_path / "o5", t=5, workers=1)


@pytest.mark.slow
def test_no_english_needs_p(tmp_path):
    ent = entries_table({"de": 4, "ja": 4})
    built = make_index(tmp_path, synthetic_images(30, ent), ent)
    with pytest.raises(UserError, match="no English"):
        run_balance(built.index, tmp_path / "o", t=5, workers=1)
    stats = run_balance(built.index, tmp_path / "o", p=0.2, workers=1, shard_size=100)
    assert stats["totals"]["kept"] > 0 and stats["t"] is None


@pytest.mark.slow
def test_cli_errors_are_one_line_and_options_are_checked(tmp_path, capsys):
    built = make_index(tmp_path, synthetic_images(40, ENTRIES), ENTRIES)
    out = tmp_path / "CUR"
    base = ["balance", "--index", str(built.index), "--out", str(out), "--workers", "1", "--shard-size", "10"]
    assert cli.main(base + ["--t", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --t: -1 is not a finite number > 0" in err
    assert cli.main(base + ["--t", "10"]) == 0
    assert "balance:" in capsys.readouterr().out
    before = shard_bytes(out)
    assert cli.main(base + ["--t", "10"]) == 0  # complete: nothing redone
    assert cli.main(base + ["--t", "11"]) == 2
    assert "different options" in capsys.readouterr().err
    assert cli.main(base + ["--t", "11", "--overwrite"]) == 0
    assert json.loads((out / "stats.json").read_text())["t"] == 11 and shard_bytes(out) != {} and before
    shutil.rmtree(out)


@pytest.mark.parametrize("kind", ["webdataset", "img2dataset"])
def test_pool_file_gone_is_a_clear_error(tmp_path, kind):
    built = make_index(tmp_path, synthetic_images(30, ENTRIES), ENTRIES, kind=kind, sources=2)
    (built.pool / "00001.tar").unlink()  # moved or unmounted: refused, nothing counted as lost (or URL-only)
    with pytest.raises(UserError, match="cannot read images from .*00001.tar.*restore or mount it and rerun"):
        run_balance(built.index, tmp_path / "CUR", t=1000, workers=1)


def cut_tar(path, keep_members: int) -> set[str]:
    """Cut a pool tar inside the data of member number `keep_members`; returns the keys of whole image members."""
    import tarfile

    with tarfile.open(path) as tar:
        members = tar.getmembers()
    cut = members[keep_members]
    path.write_bytes(path.read_bytes()[:cut.offset_data + cut.size // 2])
    return {m.name.split(".")[0] for m in members[:keep_members] if m.name.endswith(".png")}


def unreadable_pool(tmp_path):
    """Three tar sources: 00000 whole, 00001 cut in the middle, 00002 not a tar at all."""
    built = make_index(tmp_path, synthetic_images(90, ENTRIES, seed=2, max_texts=1), ENTRIES, sources=3)
    whole = cut_tar(built.pool / "00001.tar", 45)  # 3 members per sample: 15 samples readable
    (built.pool / "00002.tar").write_bytes(b"garbage" * 200)
    return built, whole


@pytest.mark.slow
def test_unreadable_pool_files_are_counted_and_reported(tmp_path, capsys, ray_address):
    built, whole = unreadable_pool(tmp_path)
    cur = tmp_path / "CUR"
    assert cli.main(["balance", "--index", str(built.index), "--out", str(cur), "--t", "1000", "--workers", "1",
                     "--shard-size", "8"]) == 0
    out = capsys.readouterr().out
    stats = json.loads((cur / "stats.json").read_text())
    rows = pq.read_table(cur / "curated.parquet").to_pylist()
    src = {r["uid"]: r["source"].rsplit("/", 1)[1] for r in rows}
    key = {r["uid"]: r["key"] for r in built.rows.to_pylist()}
    expect = {u: "written" if s == "00000.tar" or (s == "00001.tar" and key[u] in whole) else "source_unreadable"
              for u, s in src.items()}
    assert {r["uid"]: r["status"] for r in rows} == expect
    lost = sum(v == "source_unreadable" for v in expect.values())
    assert 15 < sum(v == "written" for v in expect.values()) < 90 and lost > 30
    tot = stats["totals"]
    assert (tot["kept"], tot["written"], tot["source_unreadable_images"], tot["corrupt_images"],
            tot["missing_images"]) == (90, 90 - lost, lost, 0, 0)
    bad = stats["unreadable_sources"]
    assert [b["source"].rsplit("/", 1)[1] for b in bad] == ["00001.tar", "00002.tar"]
    assert [b["images"] for b in bad] == [30 - len(whole), 30] and "damaged after byte" in bad[0]["error"]
    assert "not a tar" in bad[1]["error"]
    assert f", {lost} in unreadable pool files" in out.splitlines()[0]
    assert "00001.tar" in out.splitlines()[1] and "00002.tar" in out.splitlines()[1]
    assert "rerun with --overwrite" in out.splitlines()[1]
    assert [s["json"]["uid"] for s in read_samples(cur)] == [u for u, v in expect.items() if v == "written"]

    two = tmp_path / "TWO"  # Ray tasks: same output
    run_balance(built.index, two, t=1000, shard_size=8, workers=2)
    assert shard_bytes(two) == shard_bytes(cur)
    assert pq.read_table(two / "curated.parquet").equals(pq.read_table(cur / "curated.parquet"))
    assert json.loads((two / "stats.json").read_text())["unreadable_sources"] == bad


@pytest.mark.slow
def test_unreadable_pool_files_resume_identically(tmp_path, monkeypatch):
    built, _ = unreadable_pool(tmp_path)
    ref, cur = tmp_path / "REF", tmp_path / "CUR"
    run_balance(built.index, ref, t=1000, shard_size=8, workers=1)
    real = interrupt_write_group(monkeypatch, on_call=3)
    with pytest.raises(KeyboardInterrupt):
        run_balance(built.index, cur, t=1000, shard_size=8, workers=1)
    monkeypatch.setattr(shards, "write_group", real)
    stats = run_balance(built.index, cur, t=1000, shard_size=8, workers=1)
    assert shard_bytes(cur) == shard_bytes(ref)
    assert pq.read_table(cur / "curated.parquet").equals(pq.read_table(ref / "curated.parquet"))
    assert stats["unreadable_sources"] == json.loads((ref / "stats.json").read_text())["unreadable_sources"]
    assert len(stats["unreadable_sources"]) == 2


@pytest.mark.slow
def test_corrupt_parquet_row_group_loses_only_its_images(tmp_path):
    built = make_index(tmp_path, synthetic_images(40, ENTRIES, seed=3, max_texts=1), ENTRIES, kind="parquet",
                       sources=2)
    pool = built.pool / "p0.parquet"  # 20 rows in row groups of 7
    col = pq.ParquetFile(pool).metadata.row_group(1).column(4)
    raw = bytearray(pool.read_bytes())
    raw[col.data_page_offset:col.data_page_offset + 24] = b"\xff" * 24
    pool.write_bytes(bytes(raw))
    stats = run_balance(built.index, tmp_path / "CUR", t=1000, shard_size=8, workers=1)
    rows = pq.read_table(tmp_path / "CUR" / "curated.parquet").to_pylist()
    lost = {r["row"] for r in rows if r["status"] == "source_unreadable"}
    assert {r["row"] for r in rows if r["source"] == str(pool.resolve()) and r["status"] != "written"} == lost
    assert lost == set(range(7, 14)) and stats["totals"]["written"] == 33
    assert [d["images"] for d in stats["unreadable_sources"]] == [7]
    assert "row group 1 (rows 7-13)" in stats["unreadable_sources"][0]["error"]


def test_overwrite_into_the_index_is_refused(tmp_path, capsys):
    """`balance --index I --out I --overwrite` would remove the INDEX's counts and manifest: refused."""
    built = make_index(tmp_path, synthetic_images(20, ENTRIES), ENTRIES)
    before = sorted(p.relative_to(built.index) for p in built.index.rglob("*"))
    assert cli.main(["balance", "--index", str(built.index), "--out", str(built.index), "--t", "5", "--workers", "1",
                     "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "which is (or holds) the input --index" in err
    assert sorted(p.relative_to(built.index) for p in built.index.rglob("*") if p.name != ".lock") == before


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["webdataset", "img2dataset"])
def test_pool_changed_since_build_index_is_refused(tmp_path, kind, capsys):
    """A pool tar replaced by another with the same keys after build-index: balance refuses in one line
    instead of pairing the INDEX's texts with the new images."""
    from pool_factory import write_meta

    built = make_index(tmp_path, synthetic_images(40, ENTRIES, seed=4), ENTRIES, kind=kind, sources=2)
    meta = write_meta(tmp_path / "META", list(zip(ENTRIES.column("lang").to_pylist(),
                                                  ENTRIES.column("entry").to_pylist())))
    index = tmp_path / "REAL"
    assert cli.main(["build-index", "--pool", str(built.pool), "--metadata", str(meta), "--out", str(index),
                     "--lid", "none", "--workers", "1"]) == 0
    capsys.readouterr()
    other = make_index(tmp_path / "other", synthetic_images(40, ENTRIES, seed=9), ENTRIES, kind=kind, sources=2)
    shutil.copyfile(other.pool / "00001.tar", built.pool / "00001.tar")
    assert cli.main(["balance", "--index", str(index), "--out", str(tmp_path / "CUR"), "--t", "1000",
                     "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pool file {built.pool.resolve() / '00001.tar'} changed since build-index" in err
    assert "--overwrite" in err and not (tmp_path / "CUR" / "shards").exists()
