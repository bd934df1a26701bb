"""core.storage against local paths, file://, fsspec memory:// and a real S3 server (tests/conftest.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import storage
from core.errors import UserError


@pytest.fixture(params=["local", "file", "memory", "s3"])
def root(request, tmp_path) -> str:
    """A fresh output folder on each kind of storage."""
    if request.param == "local":
        return str(tmp_path / "out")
    if request.param == "file":
        return f"file://{tmp_path}/out"
    if request.param == "memory":
        return f"memory://t{uuid.uuid4().hex[:8]}/out"
    return request.getfixturevalue("s3").url("out")


def test_write_read_list_remove(root):
    storage.write_bytes(storage.join(root, "a", "x.bin"), b"abc")
    storage.write_json(storage.join(root, "m.json"), {"k": "é"})
    storage.write_parquet(storage.join(root, "t.parquet"), pa.table({"n": [1, 2]}))
    assert storage.read_bytes(storage.join(root, "a", "x.bin")) == b"abc"
    assert storage.read_json(storage.join(root, "m.json")) == {"k": "é"}
    with storage.open_input(storage.join(root, "t.parquet")) as f:
        assert pq.read_table(f).column("n").to_pylist() == [1, 2]
    names = [storage.name(u) for u in storage.list_files(root)]
    assert names == ["x.bin", "m.json", "t.parquet"]
    assert [storage.name(u) for u in storage.glob(storage.join(root, "*.json"))] == ["m.json"]
    assert storage.isdir(storage.join(root, "a")) and storage.isfile(storage.join(root, "m.json"))
    fp = storage.fingerprint(storage.join(root, "a", "x.bin"))
    assert fp["size"] == 3 and fp["path"] == storage.normalize(storage.join(root, "a", "x.bin"))
    storage.remove(storage.join(root, "a"))
    assert not storage.exists(storage.join(root, "a", "x.bin"))


def test_failed_write_leaves_nothing(root):
    target = storage.join(root, "big.bin")
    with pytest.raises(RuntimeError):
        with storage.open_output(target) as f:
            f.write(b"x" * (6 << 20))
            raise RuntimeError("writer died")
    assert not storage.exists(target)
    assert [u for u in (storage.list_files(root) if storage.exists(root) else []) if "big" in u] == []


def test_local_paths_keep_common_behaviour(tmp_path):
    """A plain path resolves as before and writes through a temp name + rename (no temp file remains)."""
    out = tmp_path / "o"
    storage.write_json(str(out / "manifest.json"), {"a": 1})
    assert (out / "manifest.json").read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    assert storage.normalize(str(out / ".." / "o")) == str(out.resolve())
    assert storage.normalize("s3://b/p/") == "s3://b/p"


def test_journal_records(root):
    j = storage.Journal(root, "parts")
    storage.makedirs(root)
    j.append("part-00001", {"part": 1})
    j.append("part-00000", {"part": 0})
    assert sorted(r["part"] for r in j.records()) == [0, 1]
    j.clear()
    assert j.records() == []


def test_hf_is_read_only():
    with pytest.raises(UserError, match="read-only"):
        storage.write_bytes("hf://datasets/x/y/z.bin", b"")


def test_storage_options_flag_is_checked():
    with pytest.raises(UserError, match="--storage-options: not valid JSON"):
        storage.configure("{not json")


# ---- locks --------------------------------------------------------------------------------------------

def test_lock_object_refuses_second_run(s3):
    out = s3.url("out")
    with storage.lock(out):
        held = json.loads((s3.path("out", storage.LOCK_NAME)).read_bytes())
        assert held["pid"] == os.getpid() and held["heartbeat"] > 0
        with pytest.raises(UserError, match=r"in use by another run \(lock object s3://"):
            with storage.lock(out):
                pass
    assert not storage.exists(storage.join(out, storage.LOCK_NAME))


@pytest.mark.slow
def test_lock_object_of_dead_process_is_stale(s3):
    """kill -9 leaves the lock object behind; its pid is gone, so the rerun takes the lock at once."""
    code = ("import os, sys; from core import storage\n"
            "cm = storage.lock(sys.argv[1]); cm.__enter__(); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, s3.url("out")], check=True)
    assert storage.exists(s3.url("out", storage.LOCK_NAME))
    with storage.lock(s3.url("out")):
        pass


def test_lock_object_of_other_host_waits_for_heartbeat(s3):
    lock_url = s3.url("out", storage.LOCK_NAME)
    storage.write_json(lock_url, {"owner": "x", "host": "elsewhere", "pid": 1, "heartbeat": 0})
    with storage.lock(s3.url("out"), stale_s=5):  # heartbeat at epoch 0: stale
        pass
    storage.write_json(lock_url, {"owner": "x", "host": "elsewhere", "pid": 1, "heartbeat": time.time()})
    with pytest.raises(UserError, match="elsewhere pid 1"):
        with storage.lock(s3.url("out"), stale_s=5):
            pass


# ---- one-line errors ----------------------------------------------------------------------------------

def test_wrong_credentials_one_line(s3, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-0000000000")
    monkeypatch.setenv(storage.ENV_OPTIONS, json.dumps({"s3": {"secret": "wrong-secret-0000000000",
                                                                "skip_instance_cache": True}}))
    with pytest.raises(UserError) as e:
        storage.exists(s3.url("pool", "x.parquet"))
    msg = str(e.value)
    assert "\n" not in msg and s3.url("pool", "x.parquet") in msg and "access denied" in msg and "credentials" in msg


def test_missing_bucket_one_line(s3):
    url = "s3://no-such-bucket-xyz/pool/a.parquet"
    with pytest.raises(UserError) as e:
        storage.read_bytes(url)
    assert "\n" not in str(e.value) and url in str(e.value)


def test_missing_object_one_line(s3):
    url = s3.url("nothing.bin")
    with pytest.raises(UserError, match="no such object") as e:
        storage.read_bytes(url)
    assert url in str(e.value)


def test_missing_filesystem_package_is_one_line():
    """gs:// without gcsfs installed names the package to install (skipped where gcsfs is installed)."""
    try:
        import gcsfs  # noqa: F401
        pytest.skip("gcsfs is installed")
    except ImportError:
        pass
    with pytest.raises(UserError, match=r"gs://bucket/x: cannot open gs:// storage .*pip install gcsfs"):
        storage.exists("gs://bucket/x")


def test_local_copies_keep_one_per_source_plus_those_in_use(s3, tmp_path, monkeypatch):
    """WORLDCLIP_SCRATCH/worldclip-copies grew by one whole copy per version of a model folder, for ever."""
    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(tmp_path / "scratch"))
    copies = tmp_path / "scratch" / "worldclip-copies"
    model, other = s3.url("model"), s3.url("other")
    storage.write_bytes(storage.join(other, "w.bin"), b"other source")
    code = ("import sys, time; from core import storage\n"
            "print(storage.local_copy(sys.argv[1]), flush=True); time.sleep(float(sys.argv[2]))")

    def copy_in_subprocess(url, hold_s=0.0):
        proc = subprocess.Popen([sys.executable, "-c", code, url, str(hold_s)], stdout=subprocess.PIPE, text=True)
        return proc, proc.stdout.readline().strip()

    def version(n):
        storage.write_bytes(storage.join(model, "w.bin"), f"version {n}".encode())
        storage.write_bytes(storage.join(model, "sub", "config.json"), b"{}")

    version(1)
    proc, first = copy_in_subprocess(model)
    proc.wait()
    proc, second = copy_in_subprocess(other)
    proc.wait()
    version(2)
    holder, held = copy_in_subprocess(model, hold_s=300)  # a long run keeps using version 2
    try:
        assert held != first and not os.path.exists(first)  # version 1: no process holds it any more
        assert open(os.path.join(held, "w.bin"), "rb").read() == b"version 2"
        version(3)
        proc, third = copy_in_subprocess(model)
        proc.wait()
        assert os.path.isdir(held) and os.path.isdir(third)  # version 2 is still in use: kept
        assert os.path.isdir(second)  # another source is never touched
    finally:
        holder.kill()
        holder.wait()
    (copies / f".{os.path.basename(third)}.abc123").mkdir()  # a copy killed before it wrote its marker, long ago
    os.utime(copies / f".{os.path.basename(third)}.abc123", (0, 0))
    assert storage.local_copy(model) == third  # this process now holds version 3; version 2 is free
    assert sorted(p.name for p in copies.iterdir()) == sorted([os.path.basename(second), os.path.basename(third)])
    assert open(os.path.join(third, "sub", "config.json"), "rb").read() == b"{}"


def _many_groups(n: int = 4000) -> pa.Table:
    return pa.table({"a": list(range(n)), "b": [f"t{i}" for i in range(n)], "c": [i * 0.5 for i in range(n)]})


def test_read_parquet_and_parquet_file_by_path_and_url(root):
    url = storage.join(root, "t.parquet")
    storage.write_parquet(url, _many_groups(), row_group_size=500)
    assert storage.read_parquet(url) == _many_groups()
    assert storage.read_parquet(url, columns=["b"]).column("b").to_pylist()[:2] == ["t0", "t1"]
    with storage.parquet_file(url) as f:
        assert f.metadata.num_row_groups == 8
        assert f.read_row_group(1, columns=["a"]).column("a").to_pylist()[0] == 500
        assert sum(b.num_rows for b in f.iter_batches(batch_size=300, columns=["c"])) == 4000


def test_url_parquet_is_read_on_the_calling_thread_only(monkeypatch):
    """Arrow's pools release a Python file's buffers after a read returns; one left at interpreter exit aborts
    the process ("terminate called without an active exception"), so URL reads must never use those pools."""
    import threading

    url = f"memory://t{uuid.uuid4().hex[:8]}/t.parquet"
    storage.write_parquet(url, _many_groups(), row_group_size=500)
    threads: set[int] = set()
    real_open = storage.open_input

    class Recording:
        def __init__(self, f):
            self.f = f

        def read(self, *a):
            threads.add(threading.get_ident())
            return self.f.read(*a)

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(storage, "open_input", lambda u, *a, **k: Recording(real_open(u, *a, **k)))
    storage.read_parquet(url)
    with storage.parquet_file(url) as f:
        f.read_row_groups([0, 1, 2])
        list(f.iter_batches(batch_size=700))
        f.read(columns=["a", "c"])
    assert threads == {threading.get_ident()}
    with real_open(url) as fh:  # the check can fail: Arrow's own pre-buffered read runs on its IO threads
        pq.read_table(Recording(fh))
    assert len(threads) > 1



def test_local_copy_of_a_file_url_asks_for_its_folder(root):
    if storage.is_local(root):
        pytest.skip("local paths are used where they are, not copied")
    spm = storage.join(root, "tok", "sentencepiece.bpe.model")
    storage.write_bytes(spm, b"not a model")
    with pytest.raises(UserError, match=r"--tokenizer .*\.bpe\.model: a file, but a folder is needed.*tok\)"):
        storage.local_copy(spm, "--tokenizer")
