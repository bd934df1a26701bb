"""build-index -> balance with pool, META, INDEX and CURATED in a bucket of a real S3 server (tests/conftest.py):
outputs equal to the same run on local disk, kill -9 while writing to the bucket, one-line errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from core import storage
from curation import cli
from curation.balance_run import run_balance
from index_factory import entries_table, make_index, synthetic_images
from pool_factory import write_meta

pytestmark = pytest.mark.slow
ENT = entries_table({"en": 10, "de": 6})
BUILD = ["--lid", "none", "--workers", "1", "--part-size", "60"]
BALANCE = ["--t", "12", "--shard-size", "16", "--workers", "1"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A local img2dataset pool (4 parquet + tar pairs) and its META."""
    root = tmp_path_factory.mktemp("objstore")
    built = make_index(root, synthetic_images(160, ENT, seed=5), ENT, kind="img2dataset", sources=4)
    meta = write_meta(root / "META", list(zip(ENT.column("lang").to_pylist(), ENT.column("entry").to_pylist())))
    return built.pool, meta


@pytest.fixture(scope="module")
def local_ref(inputs, tmp_path_factory) -> tuple[Path, Path]:
    """INDEX and CURATED of the pool on local disk: what every bucket run must equal."""
    pool, meta = inputs
    root = tmp_path_factory.mktemp("ref")
    assert cli.main(["build-index", "--pool", str(pool), "--metadata", str(meta), "--out", str(root / "INDEX"),
                     *BUILD]) == 0
    assert cli.main(["balance", "--index", str(root / "INDEX"), "--out", str(root / "CUR"), *BALANCE]) == 0
    return root / "INDEX", root / "CUR"


def upload(local: Path, url: str) -> None:
    for p in sorted(local.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            storage.write_bytes(storage.join(url, str(p.relative_to(local))), p.read_bytes())


def index_state(index: str) -> dict:
    """What an INDEX promises, with the pool's location (source column, input paths) left out."""
    matches = [pq.read_table(storage.open_input(u)).drop_columns(["source"]) for u in
               storage.list_files(storage.join(index, "matches"))]
    m = storage.read_json(storage.join(index, "manifest.json"))
    return {"matches": [t.to_pylist() for t in matches],
            "counts": storage.read_bytes(storage.join(index, "counts.parquet")),
            "entries": storage.read_bytes(storage.join(index, "entries.parquet")),
            "totals": m["totals"], "per_lang": m["per_lang"], "complete": m["complete"],
            "parts": {k: {f: v for f, v in p.items() if f != "source"} for k, p in m["parts"].items()}}


def curated_state(cur: str) -> dict:
    stats = storage.read_json(storage.join(cur, "stats.json"))
    stats.pop("seconds")
    files = {storage.name(u): storage.read_bytes(u) for u in storage.list_files(cur)
             if "/shards/" in u or u.endswith(("thresholds.parquet", ".png"))}
    curated = pq.read_table(storage.open_input(storage.join(cur, "curated.parquet"))).drop_columns(["source"])
    return {"stats": stats, "files": files, "curated": curated.to_pylist()}


def run_cli(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, timeout=300)


def start_cli(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "curation.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
                            start_new_session=True)


def kill9_when(proc: subprocess.Popen, ready, timeout: float = 240) -> bool:
    """SIGKILL the job's whole process group once ready(); True if it was still running then."""
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    alive = proc.poll() is None
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return alive


def test_bucket_run_equals_local_run(inputs, local_ref, s3):
    pool, meta = inputs
    upload(pool, s3.url("pool"))
    upload(meta, s3.url("META"))
    assert cli.main(["build-index", "--pool", s3.url("pool/"), "--metadata", s3.url("META"),
                     "--out", s3.url("INDEX"), *BUILD]) == 0
    assert cli.main(["balance", "--index", s3.url("INDEX"), "--out", s3.url("CUR"), *BALANCE]) == 0
    assert index_state(s3.url("INDEX")) == index_state(str(local_ref[0]))
    assert curated_state(s3.url("CUR")) == curated_state(str(local_ref[1]))
    names = {u.removeprefix(s3.url("")) for u in storage.list_files(s3.url(""))}
    assert not any(n.endswith((".tmp", storage.LOCK_NAME)) for n in names)
    assert storage.read_json(s3.url("INDEX", "manifest.json"))["inputs"][0]["path"].startswith(s3.url("pool"))
    assert cli.main(["stats", s3.url("INDEX")]) == 0


def test_two_workers_on_a_bucket_use_ray_and_equal_the_local_run(inputs, local_ref, s3, monkeypatch):
    """--workers 2 with a bucket does not fork: the driver holds S3 connections, which a forked child could take
    over (seen: the driver's next journal write hung), so a local Ray runs the workers."""
    from curation import fork_pool

    monkeypatch.setattr(fork_pool, "run", lambda *a, **kw: pytest.fail("forked with object-store connections open"))
    pool, meta = inputs
    upload(pool, s3.url("pool"))
    upload(meta, s3.url("META"))
    two = ["--workers", "2"]
    assert cli.main(["build-index", "--pool", s3.url("pool/"), "--metadata", s3.url("META"),
                     "--out", s3.url("INDEX"), *BUILD, *two]) == 0
    assert cli.main(["balance", "--index", s3.url("INDEX"), "--out", s3.url("CUR"), *BALANCE, *two]) == 0
    assert len(storage.read_json(s3.url("INDEX", "manifest.json"))["parts"]) > 2
    assert index_state(s3.url("INDEX")) == index_state(str(local_ref[0]))
    assert curated_state(s3.url("CUR")) == curated_state(str(local_ref[1]))


def test_kill9_while_writing_to_the_bucket_then_rerun(inputs, local_ref, s3):
    pool, meta = inputs
    upload(pool, s3.url("pool"))
    build = ["build-index", "--pool", s3.url("pool"), "--metadata", str(meta), "--out", s3.url("INDEX"), *BUILD]
    proc = start_cli(build)
    journal = s3.path("INDEX", "parts.journal")
    assert kill9_when(proc, lambda: journal.is_dir() and len(list(journal.glob("*.json"))) >= 2)
    visible = storage.list_files(s3.url("INDEX"))
    for u in visible:  # every object a reader can see is whole
        if u.endswith(".parquet"):
            pq.read_table(storage.open_input(u))
    assert not storage.read_json(s3.url("INDEX", "manifest.json"))["complete"]
    r = run_cli(build)
    assert r.returncode == 0, r.stderr
    assert "resumed" in r.stdout and index_state(s3.url("INDEX")) == index_state(str(local_ref[0]))

    balance = ["balance", "--index", s3.url("INDEX"), "--out", s3.url("CUR"), *BALANCE]
    proc = start_cli(balance)
    shards = s3.path("CUR", "shards")
    assert kill9_when(proc, lambda: shards.is_dir() and len(list(shards.glob("*.tar"))) >= 3)
    for u in storage.glob(s3.url("CUR", "shards", "*.tar")):  # no half-written shard is visible
        with tarfile.open(fileobj=storage.open_input(u)) as tar:
            assert all(tar.extractfile(m).read() for m in tar if m.isfile())
    r = run_cli(balance)
    assert r.returncode == 0, r.stderr
    assert curated_state(s3.url("CUR")) == curated_state(str(local_ref[1]))
    assert not storage.exists(s3.url("CUR", storage.LOCK_NAME))


def one_line_error(argv: list[str], *needles: str) -> str:
    r = run_cli(argv)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


def test_bad_cases_are_one_line_naming_the_url(inputs, s3, tmp_path):
    pool, meta = inputs
    upload(pool, s3.url("pool"))
    out = ["--metadata", str(meta), "--out", str(tmp_path / "I"), *BUILD]
    bad_secret = json.dumps({"s3": {"secret": "not-the-secret-000000000000"}})
    one_line_error(["build-index", "--pool", s3.url("pool"), *out, "--storage-options", bad_secret],
                   s3.url("pool"), "access denied", "credentials")
    one_line_error(["build-index", "--pool", "s3://no-such-bucket-wc/pool", *out], "s3://no-such-bucket-wc/pool",
                   "bucket")
    one_line_error(["build-index", "--pool", s3.url("pool", "99999.parquet"), *out],
                   s3.url("pool", "99999.parquet"), "no such object")
    storage.write_bytes(s3.url("notes", "readme.txt"), b"not a pool")
    one_line_error(["build-index", "--pool", s3.url("notes"), *out], s3.url("notes"), "names no .parquet")
    one_line_error(["build-index", "--pool", s3.url("pool", "*.warc.wat.gz"), *out], "no object matches")
    one_line_error(["balance", "--index", s3.url("nothing-here"), "--out", str(tmp_path / "C"), *BALANCE],
                   s3.url("nothing-here"), "not an INDEX")


def test_pool_object_deleted_or_replaced_between_runs(inputs, s3, tmp_path):
    pool, meta = inputs
    upload(pool, s3.url("pool"))
    assert cli.main(["build-index", "--pool", s3.url("pool"), "--metadata", str(meta), "--out", s3.url("INDEX"),
                     *BUILD]) == 0
    tar = s3.url("pool", "00001.tar")
    data = storage.read_bytes(tar)
    mid = len(data) // 2
    storage.write_bytes(tar, data[:mid] + bytes([data[mid] ^ 1]) + data[mid + 1:])  # same size, another ETag
    one_line_error(["balance", "--index", s3.url("INDEX"), "--out", s3.url("C1"), *BALANCE], tar, "changed since "
                   "build-index", "etag")
    storage.remove(tar)
    one_line_error(["balance", "--index", s3.url("INDEX"), "--out", s3.url("C2"), *BALANCE], tar, "is gone")


def test_memory_and_file_urls(inputs, local_ref, tmp_path):
    """file:// everywhere; memory:// (one process, so balance with one in-process worker) for the CURATED."""
    pool, meta = inputs
    idx = f"file://{tmp_path}/INDEX"
    assert cli.main(["build-index", "--pool", f"file://{pool}", "--metadata", f"file://{meta}", "--out", idx,
                     *BUILD]) == 0
    assert index_state(str(tmp_path / "INDEX")) == index_state(str(local_ref[0]))
    stats = run_balance(idx, "memory://wc-test/CUR", t=12, shard_size=16, workers=1)
    assert stats["totals"]["written"] > 0
    assert curated_state("memory://wc-test/CUR") == curated_state(str(local_ref[1]))
    storage.remove("memory://wc-test")


def test_gcs_bucket_run_equals_local_run(inputs, local_ref, gcs):
    """The same pipeline on gs:// through gcsfs against a GCS emulator on 127.0.0.1, options by the flag only."""
    pool, meta = inputs
    options = ["--storage-options", json.dumps(gcs.storage_options)]
    storage.configure(gcs.storage_options)
    upload(pool, gcs.url("pool"))
    upload(meta, gcs.url("META"))
    assert cli.main(["build-index", "--pool", gcs.url("pool/"), "--metadata", gcs.url("META"),
                     "--out", gcs.url("INDEX"), *BUILD, *options]) == 0
    assert cli.main(["balance", "--index", gcs.url("INDEX"), "--out", gcs.url("CUR"), *BALANCE, *options]) == 0
    assert index_state(gcs.url("INDEX")) == index_state(str(local_ref[0]))
    assert curated_state(gcs.url("CUR")) == curated_state(str(local_ref[1]))
    names = {u.removeprefix(gcs.url("")) for u in storage.list_files(gcs.url(""))}
    assert not any(n.endswith((".tmp", storage.LOCK_NAME)) for n in names)
    assert storage.fingerprint(gcs.url("pool", "00000.tar"))["etag"]  # md5Hash/etag: what balance's pool check compares
    with pytest.raises(RuntimeError):  # a failed write leaves no object (the resumable upload is never finalised)
        with storage.open_output(gcs.url("half.bin")) as f:
            f.write(b"x" * (6 << 20))
            f.flush()
            raise RuntimeError("killed mid-upload")
    assert not storage.exists(gcs.url("half.bin"))
