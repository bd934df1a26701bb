"""build-index: the per-part core against the reference matcher, LID modes, and whole runs on Ray
(formats, INDEX contract, identical output for any workers/part size, resume, refusal, bad input, cluster)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import UserError
from core.locks import output_lock
from core.outputs import content_hash
from curation.build_index import PartProcessor, derive_uid, fill_uids
from curation.build_index_run import build_index, summary_line
from curation.cli import main as curate
from curation.index import MATCH_SCHEMA, read_matches
from curation.lid import LidMode
from curation.pool import PoolColumns, expand_paths, make_parts, resolve_columns
from matching.matcher import reference_match
from metadata.store import read_entries as store_read
from pool_factory import META_ENTRIES, POOL_TEXTS, pool_table, repeated_pool, write_parquet_pool

VENV_BIN = Path(sys.executable).parent


def entries_table(entries=META_ENTRIES) -> pa.Table:
    return pa.table({"entry_id": pa.array(range(len(entries)), pa.int32()),
                     "lang": [lang for lang, _ in entries], "entry": [e for _, e in entries]})


def oracle(texts_langs, compat=False) -> tuple[dict[str, list[int]], np.ndarray]:
    """Reference matching of each (stripped text, metadata lang): text -> ids, and counts."""
    by_lang: dict[str, list[str]] = {}
    for t, lang in texts_langs:
        by_lang.setdefault(lang, []).append(t)
    found, counts = {}, np.zeros(len(META_ENTRIES), dtype=np.int64)
    for lang, texts in by_lang.items():
        ids = [i for i, (lg, _) in enumerate(META_ENTRIES) if lg == lang]
        for t, m in zip(texts, reference_match(texts, [META_ENTRIES[i][1] for i in ids], ids, compat=compat)):
            counts[m] += 1
            if m:
                found[t] = m
    return found, counts


def processor(lid: str, column: str | None = "lang", compat=False, entries=None) -> PartProcessor:
    cols = PoolColumns(text="text", uid="uid", url="url", lang=column)
    mode = LidMode("column", column) if lid == "column" else LidMode(lid)
    return PartProcessor(entries or entries_table(), mode, compat=compat, backend="auto", cols=cols,
                         fingerprint="f" * 64)


def run_parquet(proc: PartProcessor, folder: Path, part_size=1000):
    files, _ = resolve_columns(expand_paths([str(folder)]), text=None, uid=None, url=None, image=None,
                               lang=proc.cols.lang, lang_required=False)
    results = [proc.process_part(p) for p in make_parts(files, part_size)]
    return results


def test_part_core_equals_reference_and_accounts_every_row(parquet_pool):
    results = run_parquet(processor("auto"), parquet_pool, part_size=4)
    matches = pa.concat_tables([r.matches for r in results])
    counts = sum(r.counts for r in results)
    known = {"en", "de", "zh", "ja"}
    expected, expected_counts = oracle([(t.strip(), lang) for t, lang in POOL_TEXTS
                                        if t and t.strip() and lang in known])
    assert dict(zip(matches.column("text").to_pylist(), matches.column("entry_ids").to_pylist())) == expected
    assert counts.tolist() == expected_counts.tolist()
    rejected = sum((r.rejected for r in results), Counter())
    assert rejected == {"empty_text": 3, "no_metadata_language": 1}
    rows_in = sum(r.rows_in for r in results)
    assert rows_in == len(POOL_TEXTS) == sum(r.matched + r.unmatched for r in results) + sum(rejected.values())
    assert matches.schema.remove_metadata() == MATCH_SCHEMA


def test_matching_rules_through_the_core(tmp_path):
    texts = ["New York, York.", "dog\tcat\nbeach", "photo42", "42 photo", "Dog CAT", "\u00a0dog\u3000",
             "red car.", "redcar", "0", "\x1cdog\x1f"]
    pq.write_table(pa.table({"text": texts, "lang": ["en"] * len(texts)}), tmp_path / "p.parquet")
    [res] = run_parquet(processor("column"), tmp_path)
    got = dict(zip(res.matches.column("text").to_pylist(), res.matches.column("entry_ids").to_pylist()))
    expected, _ = oracle([(t.strip(), "en") for t in texts])
    assert got == expected
    assert got["New York, York."] == [2, 3]
    assert got["dog\tcat\nbeach"] == [0, 1, 5]
    assert got["dog"] == [0] and got["0"] == [6]  # str.strip() removed NBSP, ideographic space, U+001C/1F
    assert "photo42" not in got and "Dog CAT" not in got and "redcar" not in got


def test_kana_fix_versus_compat(tmp_path):
    pq.write_table(pa.table({"text": ["東京タワーの夜景", "タワー"], "lang": ["ja", "ja"]}), tmp_path / "p.parquet")
    fixed = run_parquet(processor("column"), tmp_path)[0].matches.column("entry_ids").to_pylist()
    compat = run_parquet(processor("column", compat=True), tmp_path)[0].matches.column("entry_ids").to_pylist()
    assert fixed == [[16, 17, 18], [17]]
    assert compat == [[16, 18], [17]]  # the reference pads kana "タワー": it matches only between spaces
    assert oracle([("東京タワーの夜景", "ja")], compat=True)[0] == {"東京タワーの夜景": [16, 18]}


def test_lid_modes(tmp_path):
    pq.write_table(pa.table({
        "text": ["A photo of a dog running on the beach at sunset", "Ein Hund spielt am Strand mit einem Ball",
                 "My cat sleeps on the red car every morning"],
        "lang": [None, "de", "xx"]}), tmp_path / "p.parquet")

    def langs(res):
        return dict(zip(res.matches.column("text").to_pylist(), res.matches.column("lang").to_pylist()))

    auto = run_parquet(processor("auto"), tmp_path)[0]  # null -> detected; a present code is trusted
    assert list(langs(auto).values()) == ["en", "de"] and auto.rejected == {"no_metadata_language": 1}
    col = run_parquet(processor("column"), tmp_path)[0]  # null and unknown -> never detected
    assert list(langs(col).values()) == ["de"] and col.rejected == {"no_metadata_language": 2}
    ft = run_parquet(processor("fasttext", column=None), tmp_path)[0]
    assert list(langs(ft).values()) == ["en", "de", "en"] and not ft.rejected
    none = run_parquet(processor("none", column=None), tmp_path)[0]
    assert set(langs(none).values()) == {"all"}
    assert none.matches.column("entry_ids").to_pylist()[1] == [10, 11]  # all entries, every language
    single = run_parquet(processor("none", column=None, entries=entries_table(META_ENTRIES[:10])), tmp_path)[0]
    assert set(langs(single).values()) == {"en"}


def test_uid_derivation():
    assert derive_uid("http://a/x.jpg", "/p", 3) == hashlib.blake2b(b"http://a/x.jpg", digest_size=16).hexdigest()
    assert derive_uid(None, "/p", 3) == hashlib.blake2b(b"/p\x003", digest_size=16).hexdigest()



@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["", " ", "\u3000", "u1"])),
                          st.one_of(st.none(), st.sampled_from(["", "\u00a0", "http://a/é.jpg", " http://b "]))),
                max_size=8), st.sampled_from(["/p", "/tmp/\udcff\u00e9.parquet"]))
@pytest.mark.slow
@settings(max_examples=100, deadline=None)
def test_columnar_uids_equal_derive_uid(rows, source):
    table = pa.table({"uid": pa.array([u for u, _ in rows], pa.string()),
                      "url": pa.array([u for _, u in rows], pa.string()),
                      "row": pa.array(range(7, 7 + len(rows)), pa.int64())})
    expected = [u if u and u.strip() else derive_uid(url, source, 7 + i) for i, (u, url) in enumerate(rows)]
    assert fill_uids(table, source).to_pylist() == expected


def test_empty_uid_is_a_missing_uid(tmp_path):
    """Issue 17.8: five images with uid "" were four (the url-less ones merged into one uid "")."""
    urls = ["http://a/1.jpg", None, None, "", "http://a/2.jpg"]
    pq.write_table(pa.table({"text": ["a dog"] * 5, "uid": [""] * 4 + [" "], "url": pa.array(urls, pa.string()),
                             "lang": ["en"] * 5}), tmp_path / "p.parquet")
    [res] = run_parquet(processor("column"), tmp_path)
    uids = res.matches.column("uid").to_pylist()
    source = str((tmp_path / "p.parquet").resolve())
    assert uids == [derive_uid("http://a/1.jpg", source, 0), derive_uid(None, source, 1),
                    derive_uid(None, source, 2), derive_uid(None, source, 3), derive_uid("http://a/2.jpg", source, 4)]
    assert len(set(uids)) == 5 and "" not in uids

# ---- whole runs on Ray ---------------------------------------------------------------------------

def index_state(out: Path) -> tuple[bytes, set, dict]:
    m = read_matches(out)
    rows = {(r["uid"], r["text"], r["url"], r["lang"], tuple(r["entry_ids"]), r["source"], r["row"], r["key"])
            for r in m.to_pylist()}
    manifest = json.loads((out / "manifest.json").read_text())
    return (out / "counts.parquet").read_bytes(), rows, {k: manifest[k] for k in ("totals", "per_lang", "inputs")}


@pytest.mark.slow
def test_index_contract(ray_address, meta_dir, parquet_pool, tmp_path):
    out = tmp_path / "index"
    manifest = build_index([str(parquet_pool)], str(meta_dir), str(out), workers=2, part_size=5)
    assert manifest["complete"] and len(manifest["parts"]) == 4
    parts = sorted((out / "matches").glob("*.parquet"))
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(4)]
    for p in parts:
        schema = pq.read_schema(p)
        assert schema.remove_metadata() == MATCH_SCHEMA
        assert schema.metadata[b"worldclip.metadata_fingerprint"].decode() == content_hash(meta_dir / "entries.parquet")
    counts = pq.read_table(out / "counts.parquet")
    assert counts.schema.names == ["entry_id", "lang", "entry", "count"]
    assert counts.column("entry_id").to_pylist() == list(range(len(META_ENTRIES)))
    assert 0 in counts.column("count").to_pylist()  # zero counts included
    assert (out / "entries.parquet").read_bytes() == (meta_dir / "entries.parquet").read_bytes()
    t = manifest["totals"]
    assert t["rows_in"] == t["matched"] + t["unmatched"] + sum(t["rejected"].values()) == len(POOL_TEXTS)
    assert sum(v["matched"] for v in manifest["per_lang"].values()) == t["matched"]
    assert manifest["pool"] == {"format": "parquet", "text_column": "text", "uid_column": "uid", "url_column": "url",
                                "image_column": None}
    m = read_matches(out)
    assert sum(counts.column("count").to_pylist()) == sum(len(x) for x in m.column("entry_ids").to_pylist())
    for r in m.to_pylist():  # uid: column, else url hash, else source+row hash
        i = r["row"] + (0 if r["source"].endswith("pool-0.parquet") else 8)
        if i % 5:
            assert r["uid"] == f"img{i // 2:06d}"
        else:
            assert r["uid"] == derive_uid(r["url"], r["source"], r["row"])


@pytest.mark.slow
def test_identical_index_for_any_workers_and_part_size(ray_address, meta_dir, tmp_path):
    pool = write_parquet_pool(tmp_path / "pool", repeated_pool(20), files=3, row_group_size=9)
    states = []
    for i, (workers, part_size) in enumerate([(1, 1000), (2, 7), (2, 64)]):
        build_index([str(pool)], str(meta_dir), str(tmp_path / f"i{i}"), workers=workers, part_size=part_size)
        states.append(index_state(tmp_path / f"i{i}"))
    assert states[0] == states[1] == states[2]


@pytest.mark.slow
def test_in_process_run_equals_ray_run_byte_for_byte(ray_address, meta_dir, tmp_path, monkeypatch):
    """--workers 1 runs without Ray and reads META once (its worker shares the driver's table); its part
    files and counts are the bytes a Ray run writes."""
    import curation.build_index_run as run
    import curation.executor as executor

    pool = write_parquet_pool(tmp_path / "pool", repeated_pool(20), files=2, row_group_size=9)
    build_index([str(pool)], str(meta_dir), str(tmp_path / "ray"), workers=2, part_size=11)
    monkeypatch.setattr(executor, "ensure_ray", lambda *a: pytest.fail("--workers 1 started Ray"))
    loads = []
    monkeypatch.setattr(run, "store_read", lambda meta: loads.append(meta) or store_read(meta))
    build_index([str(pool)], str(meta_dir), str(tmp_path / "local"), workers=1, part_size=11)
    assert loads == [str(meta_dir)]
    files = sorted(str(f.relative_to(tmp_path / "ray")) for f in (tmp_path / "ray").rglob("*")
                   if f.is_file() and f.suffix in (".parquet", ".npz"))
    assert len(files) > 4
    for f in files:
        assert (tmp_path / "local" / f).read_bytes() == (tmp_path / "ray" / f).read_bytes(), f


@pytest.mark.slow
def test_every_format_in_one_run(ray_address, meta_dir, parquet_pool, img2dataset_pool, webdataset_pool, wat_pool,
                                 tmp_path):
    out = tmp_path / "index"
    m = build_index([str(parquet_pool), str(img2dataset_pool), str(webdataset_pool), str(wat_pool)],
                    str(meta_dir), str(out), workers=2, part_size=6)
    t = m["totals"]
    wds_samples = sum(1 for x, _ in POOL_TEXTS if x is not None) + 1
    assert t["rows_in"] == 2 * len(POOL_TEXTS) + wds_samples + 5
    assert t["rows_in"] == t["matched"] + t["unmatched"] + sum(t["rejected"].values())
    assert t["rejected"]["download_failed"] == 4 and t["rejected"]["missing_text"] == 1
    assert m["pool"]["format"] == "mixed:img2dataset+parquet+wat+webdataset"
    assert t["skipped_wat_records"] == {"not_metadata": 1, "not_response": 1}  # warcinfo, request metadata
    assert "; 2 WAT records without image texts;" in summary_line(m, str(out))
    rows = read_matches(out).to_pylist()
    by_source = Counter(Path(r["source"]).name for r in rows)
    assert set(by_source) == {"pool-0.parquet", "pool-1.parquet", "00000.parquet", "00000.tar",
                              "CC-MAIN-test-00000.warc.wat.gz"}
    wat = [r for r in rows if r["source"].endswith(".wat.gz")]
    assert {r["text"]: r["entry_ids"] for r in wat} == {"A dog on the beach": [0, 5], "My cat and dog": [0, 1],
                                                         "New York skyline": [2, 3], "Tokyo tower at night": [9]}
    assert all(r["uid"] == derive_uid(r["url"], "", 0) for r in wat)
    assert all(r["key"] for r in rows if r["source"].endswith((".tar", "00000.parquet")))


@pytest.mark.slow
def test_refuses_changed_options_resumes_same_and_overwrites(ray_address, meta_dir, parquet_pool, tmp_path):
    out = tmp_path / "index"
    build_index([str(parquet_pool)], str(meta_dir), str(out), workers=1, part_size=5)
    before = index_state(out)
    again = build_index([str(parquet_pool)], str(meta_dir), str(out), workers=2, part_size=5)
    assert again["resumed_parts"] == 4 and index_state(out) == before
    with pytest.raises(UserError, match=r"different options.*--overwrite"):
        build_index([str(parquet_pool)], str(meta_dir), str(out), part_size=6)
    with pytest.raises(UserError, match=r"different options"):
        build_index([str(parquet_pool)], str(meta_dir), str(out), part_size=5, lid="fasttext")
    with pytest.raises(UserError, match=r"different inputs"):
        build_index([str(parquet_pool / "pool-0.parquet")], str(meta_dir), str(out), part_size=5)
    m = build_index([str(parquet_pool)], str(meta_dir), str(out), part_size=6, overwrite=True, workers=1)
    assert m["resumed_parts"] == 0 and len(m["parts"]) == 4 and index_state(out)[0] == before[0]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        build_index([str(parquet_pool)], str(meta_dir), str(tmp_path / "other"))
    with output_lock(out):
        with pytest.raises(UserError, match="in use by another run"):
            build_index([str(parquet_pool)], str(meta_dir), str(out), part_size=6)


@pytest.mark.slow
def test_bad_inputs_cli(ray_address, meta_dir, tmp_path, capsys):
    good = write_parquet_pool(tmp_path / "good", pool_table(), files=1)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.parquet").write_bytes(b"garbage, not parquet")
    rc = curate(["build-index", "--pool", str(tmp_path / "broken"), "--metadata", str(meta_dir),
                 "--out", str(tmp_path / "o1")])
    assert rc == 2 and "x.parquet: not a readable Parquet file" in capsys.readouterr().err
    rc = curate(["build-index", "--pool", str(good), "--metadata", str(meta_dir), "--out", str(tmp_path / "o2"),
                 "--text-column", "caption"])
    assert rc == 2 and "columns found: text, uid, url, lang" in capsys.readouterr().err
    rc = curate(["build-index", "--pool", str(good), "--metadata", str(meta_dir), "--out", str(tmp_path / "o3"),
                 "--lid", "langid"])
    assert rc == 2 and "--lid must be" in capsys.readouterr().err
    rc = curate(["build-index", "--pool", str(good), "--metadata", str(meta_dir), "--out", str(tmp_path / "o3"),
                 "--workers", "0"])
    assert rc == 2 and "argument --workers: 0 is not a finite integer >= 1" in capsys.readouterr().err
    # a damaged row group: its rows are counted unreadable, the rest of the file is indexed
    pq.write_table(pa.table({"text": ["a dog"] * 400 + ["a cat"] * 400}), tmp_path / "dmg.parquet",
                   compression="none", row_group_size=400)
    data = bytearray((tmp_path / "dmg.parquet").read_bytes())
    data[4:40] = b"\xff" * 36
    (tmp_path / "dmg.parquet").write_bytes(bytes(data))
    rc = curate(["build-index", "--pool", str(tmp_path / "dmg.parquet"), "--metadata", str(meta_dir),
                 "--out", str(tmp_path / "o4"), "--lid", "none", "--part-size", "400"])
    printed = capsys.readouterr().out
    assert rc == 0 and "rejected: unreadable_file 400" in printed and "1 damaged file(s)" in printed
    m = json.loads((tmp_path / "o4" / "manifest.json").read_text())
    assert m["totals"]["matched"] == 400 and m["errors"][0]["rows"] == [0, 400]


@pytest.mark.slow
def test_compat_flag_reaches_the_workers(ray_address, meta_dir, tmp_path):
    pq.write_table(pa.table({"text": ["東京タワーの夜景"], "lang": ["ja"]}), tmp_path / "ja.parquet")
    ids = {}
    for flag in ([], ["--compat", "metaclip"]):
        out = tmp_path / f"o{len(flag)}"
        assert curate(["build-index", "--pool", str(tmp_path / "ja.parquet"), "--metadata", str(meta_dir),
                       "--out", str(out), "--workers", "1", *flag]) == 0
        ids[bool(flag)] = read_matches(out).column("entry_ids").to_pylist()
        assert json.loads((out / "manifest.json").read_text())["options"]["compat"] is bool(flag)
    assert ids == {False: [[16, 17, 18]], True: [[16, 18]]}


def _big_pool(folder: Path, rows: int) -> Path:
    texts = [t for t, lang in POOL_TEXTS[:10] if lang == "en"]
    table = pa.table({"text": [f"{texts[i % len(texts)]} {i}" for i in range(rows)], "lang": ["en"] * rows})
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "big.parquet", row_group_size=4096)
    return folder


@pytest.mark.slow
def test_killed_run_resumes_to_identical_index(ray_address, meta_dir, tmp_path):
    pool = _big_pool(tmp_path / "pool", 300_000)
    args = ["--pool", str(pool), "--metadata", str(meta_dir), "--part-size", "5000", "--workers", "1",
            "--backend", "pyahocorasick"]  # a known-speed backend so the kill lands mid-way
    out = tmp_path / "killed"
    proc = subprocess.Popen([str(VENV_BIN / "curate"), "build-index", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = out / "parts.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(journal.read_text().splitlines())
    assert 3 <= done < 60, "the run should have been killed mid-way"
    assert not (out / "counts.parquet").exists()
    # a half-written part: a temp file, and a part renamed into place but never recorded
    (out / "matches" / ".part-00059.parquet.x.tmp").write_bytes(b"half")
    (out / "matches" / "part-00059.parquet").write_bytes(b"not recorded")
    m = build_index([str(pool)], str(meta_dir), str(out), part_size=5000, workers=2, backend="pyahocorasick")
    assert m["resumed_parts"] == done
    build_index([str(pool)], str(meta_dir), str(tmp_path / "clean"), part_size=5000, workers=2,
                backend="pyahocorasick")
    assert index_state(out) == index_state(tmp_path / "clean")
    assert not list((out / "matches").glob(".*.tmp"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"ray head did not open port {port}")


@pytest.mark.slow
def test_two_node_ray_cluster_gives_identical_index(ray_address, meta_dir, tmp_path):
    """A real cluster: `ray start --head` plus a second `ray start --address` node, one CPU each, on
    127.0.0.1; `--workers 2` places one actor on each node (each has one CPU)."""
    import tempfile

    pool = write_parquet_pool(tmp_path / "pool", repeated_pool(30, long_text=False), files=2, row_group_size=16)
    port, ray_tmp = _free_port(), tempfile.mkdtemp(prefix="ray", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    ray_bin = str(VENV_BIN / "ray")
    nodes = [subprocess.Popen([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=1", "--block",
                               "--node-ip-address=127.0.0.1", "--include-dashboard=false", f"--temp-dir={ray_tmp}"],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for_port(port, 90)
        nodes.append(subprocess.Popen([ray_bin, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", "--block",
                                       "--node-ip-address=127.0.0.1"], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        args = ["build-index", "--pool", str(pool), "--metadata", str(meta_dir), "--part-size", "50"]
        cluster = subprocess.run([str(VENV_BIN / "curate"), *args, "--out", str(tmp_path / "cluster"),
                                  "--ray-address", f"127.0.0.1:{port}", "--workers", "2"],
                                 env=env, capture_output=True, text=True, timeout=240)
        assert cluster.returncode == 0, cluster.stderr[-2000:]
        assert "build-index:" in cluster.stdout
        build_index([str(pool)], str(meta_dir), str(tmp_path / "local"), part_size=50, workers=1)
        assert index_state(tmp_path / "cluster") == index_state(tmp_path / "local")
    finally:
        for node in reversed(nodes):  # each node's process group: `ray start` and the Ray processes it spawned
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        import shutil

        import psutil

        left = [p.pid for p in psutil.process_iter(["cmdline"]) if any(ray_tmp in c for c in p.info["cmdline"] or [])]
        shutil.rmtree(ray_tmp, ignore_errors=True)
        assert not left, f"Ray processes of the test cluster still running: {left}"


@pytest.mark.slow
def test_killed_worker_is_restarted_and_output_is_identical(ray_address, meta_dir, tmp_path):
    """SIGKILL a Ray worker process mid-run: Ray restarts the actor and retries its part."""
    import threading

    import psutil

    pool = _big_pool(tmp_path / "pool", 200_000)
    out, result = tmp_path / "index", {}
    run = threading.Thread(target=lambda: result.update(build_index(
        [str(pool)], str(meta_dir), str(out), part_size=5000, workers=2, backend="pyahocorasick")))
    run.start()
    journal, killed, deadline = out / "parts.jsonl", [], time.time() + 120
    while not killed and time.time() < deadline and run.is_alive():
        if journal.exists() and journal.read_text().count("\n") >= 2:
            for p in psutil.Process().children(recursive=True):  # only processes this test started
                try:
                    if "IndexWorker" in " ".join(p.cmdline()):
                        p.kill()
                        killed.append(journal.read_text().count("\n"))
                except psutil.Error:
                    pass
        time.sleep(0.01)
    run.join(timeout=300)
    assert killed and killed[0] < 40, "a worker should have been killed mid-run"
    assert result["complete"] and result["totals"]["rows_in"] == 200_000
    build_index([str(pool)], str(meta_dir), str(tmp_path / "clean"), part_size=5000, workers=2,
                backend="pyahocorasick")
    assert index_state(out) == index_state(tmp_path / "clean")
    assert not list((out / "matches").glob(".*.tmp"))


def test_overwrite_into_the_metadata_is_refused(tmp_path, parquet_pool, capsys):
    """`build-index --metadata M --out M --overwrite` would empty META: refused in one line, META intact."""
    from pool_factory import write_meta

    meta = write_meta(tmp_path / "META")
    before = {p.name: p.read_bytes() for p in meta.iterdir() if p.is_file() and p.name != ".lock"}
    assert curate(["build-index", "--pool", str(parquet_pool), "--metadata", str(meta), "--out", str(meta),
                   "--overwrite", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "which is (or holds) the input --metadata" in err
    assert {p.name: p.read_bytes() for p in meta.iterdir() if p.is_file() and p.name != ".lock"} == before


@pytest.mark.slow
def test_fully_resumed_index_records_the_real_backend(ray_address, meta_dir, parquet_pool, tmp_path):
    """17.20: a rerun with every part journaled recorded backend `auto` instead of the one that ran."""
    out = tmp_path / "I"
    first = build_index([str(parquet_pool)], str(meta_dir), str(out), workers=1, part_size=10)
    again = build_index([str(parquet_pool)], str(meta_dir), str(out), workers=1, part_size=10)
    assert again["resumed_parts"] == len(first["parts"]) and again["backend"] == first["backend"] != "auto"
