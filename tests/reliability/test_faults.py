"""Faults inside a running job: a Ray worker dying mid-task, a disk filling up, a second run on the
same output folder. Each must end in identical output (after a retry or a rerun) or a clean refusal."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness import (
    ENTRIES,
    ENV,
    big_pool,
    curated_state,
    curation_inputs,
    index_factory,
    index_state,
    manifest,
    shard_members,
    temp_files,
    training_inputs,
)

pytestmark = pytest.mark.slow


def die_once(fn, marker: Path):
    """`fn`, except that the first call (over all processes) kills its worker process outright."""
    def wrapped(*args, **kwargs):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return fn(*args, **kwargs)
        os.close(fd)
        os._exit(1)
    wrapped.__name__ = fn.__name__
    return wrapped


# ---- a Ray worker dies mid-task --------------------------------------------------------------------

@pytest.mark.parametrize("module,stage", [("curation.balance_run", "select_bucket"),
                                          ("curation.shards", "write_group")])
def test_balance_worker_dies_once_and_task_is_retried(ray_address, tmp_path, monkeypatch, module, stage):
    import importlib

    from curation import balance_run

    mod = importlib.import_module(module)

    built = index_factory.make_index(tmp_path, index_factory.synthetic_images(200, ENTRIES, seed=4), ENTRIES,
                                     sources=4, part_rows=50)
    balance_run.run_balance(built.index, tmp_path / "clean", t=20, shard_size=10, workers=1)
    marker = tmp_path / "died"
    monkeypatch.setattr(mod, stage, die_once(getattr(mod, stage), marker))
    balance_run.run_balance(built.index, tmp_path / "cur", t=20, shard_size=10, workers=2, rows_per_bucket=50)
    assert marker.exists(), "the fault was never injected"
    a, b = curated_state(tmp_path / "clean"), curated_state(tmp_path / "cur")
    assert a[0] == b[0] and a[1].equals(b[1]) and a[3] == b[3]
    assert not temp_files(tmp_path / "cur")


def test_build_index_worker_killed_is_restarted(ray_address, tmp_path):
    import psutil

    from curation.build_index_run import build_index

    meta = curation_inputs.write_meta(tmp_path / "meta")
    pool = big_pool(tmp_path / "pool", 40_000)
    kw = dict(part_size=2000, workers=2, backend="pyahocorasick")
    build_index([str(pool)], str(meta), str(tmp_path / "clean"), **kw)
    out, result, killed = tmp_path / "index", {}, []
    run = threading.Thread(target=lambda: result.update(build_index([str(pool)], str(meta), str(out), **kw)))
    run.start()
    journal, deadline = out / "parts.jsonl", time.time() + 120
    while not killed and time.time() < deadline and run.is_alive():
        if journal.exists() and journal.read_bytes().count(b"\n") >= 2:
            for p in psutil.Process().children(recursive=True):  # only processes this test's Ray started
                try:
                    if "IndexWorker" in " ".join(p.cmdline()):
                        p.kill()
                        killed.append(p.pid)
                except psutil.Error:
                    pass
        time.sleep(0.005)
    run.join(timeout=300)
    assert killed, "no worker was killed"
    assert result["complete"] and index_state(out) == index_state(tmp_path / "clean")
    assert not temp_files(out)


# ---- disk full -------------------------------------------------------------------------------------

@pytest.fixture()
def small_disk(tmp_path):
    """A 320 KiB tmpfs at tmp_path/disk (root only); grow() gives it room again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)

    try:
        yield disk, grow
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def noisy_images(n: int, entries, seed: int = 0):
    """Images of ~12 KB each (random pixels), so a few dozen fill the small disk."""
    import io

    import numpy as np
    from PIL import Image

    imgs = index_factory.synthetic_images(n, entries, seed=seed, max_texts=1)
    rng = np.random.default_rng(seed)
    for im in imgs:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
        im.data = buf.getvalue()
    return imgs


def assert_nothing_half_written(out: Path, clean: Path) -> None:
    """Every file left in `out` that has a final name is whole: equal to the clean run's file."""
    assert not temp_files(out)
    for p in (out / "shards").glob("*.tar"):
        assert p.read_bytes() == (clean / "shards" / p.name).read_bytes(), p


def test_balance_disk_full_then_resume(tmp_path, small_disk, capsys):
    from curation.cli import main as curate

    disk, grow = small_disk
    built = index_factory.make_index(tmp_path, noisy_images(60, ENTRIES), ENTRIES, sources=3)
    argv = ["balance", "--index", str(built.index), "--t", "1000", "--shard-size", "5", "--workers", "1"]
    assert curate([*argv, "--out", str(tmp_path / "clean")]) == 0
    out = disk / "cur"
    capsys.readouterr()
    assert curate([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (out / "stats.json").exists() and not manifest(out)["complete"]
    assert_nothing_half_written(out, tmp_path / "clean")
    grow()
    assert curate([*argv, "--out", str(out)]) == 0
    a, b = curated_state(tmp_path / "clean"), curated_state(out)
    assert a[0] == b[0] and a[1].equals(b[1]) and a[3] == b[3]


def test_build_index_disk_full_then_resume(ray_address, tmp_path, small_disk, capsys):
    from curation.cli import main as curate

    disk, grow = small_disk
    meta = curation_inputs.write_meta(tmp_path / "meta")
    pool = big_pool(tmp_path / "pool", 6000)
    argv = ["build-index", "--pool", str(pool), "--metadata", str(meta), "--part-size", "500", "--workers", "1"]
    assert curate([*argv, "--out", str(tmp_path / "clean")]) == 0
    out = disk / "index"
    capsys.readouterr()
    assert curate([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err, err
    assert not (out / "counts.parquet").exists() and not temp_files(out)
    for p in (out / "matches").glob("*.parquet"):
        pq.read_table(p)  # every part file in place is whole
    grow()
    assert curate([*argv, "--out", str(out)]) == 0
    assert index_state(out) == index_state(tmp_path / "clean")


def test_metadata_disk_full_then_rerun(tmp_path, small_disk, capsys):
    from curation.cli import main as curate
    from metadata.store import load_entries

    disk, grow = small_disk
    words = tmp_path / "words.txt"
    words.write_text("".join(f"entry number {i}\n" for i in range(60_000)))
    argv = ["metadata", "add", "--lang", "en", "--file", str(words), "--source", "user", "--out"]
    assert curate([*argv, str(tmp_path / "clean")]) == 0
    capsys.readouterr()
    assert curate([*argv, str(disk / "META")]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err, err
    assert not (disk / "META" / "entries.parquet").exists() and not temp_files(disk / "META")
    grow()
    assert curate([*argv, str(disk / "META")]) == 0
    assert load_entries(disk / "META", verify=True).equals(load_entries(tmp_path / "clean"))


# ---- a second run on the same output folder --------------------------------------------------------

def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding `folder`'s output lock (as a running stage does) until killed."""
    code = ("import sys, time\nfrom core.locks import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, env=ENV, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_concurrent_runs_are_refused(ray_address, tmp_path, capsys):
    from curation.cli import main as curate
    from training.cli import main as train
    from training.tokenizer import train_sentencepiece

    meta = curation_inputs.write_meta(tmp_path / "meta")
    pool = curation_inputs.write_parquet_pool(tmp_path / "pool", curation_inputs.pool_table())
    built = index_factory.make_index(tmp_path / "b", index_factory.synthetic_images(40, ENTRIES), ENTRIES)
    spec = training_inputs.write_shards(tmp_path / "curated", 1, 16)
    train_sentencepiece(training_inputs.caption_corpus(), 200, tmp_path / "tok")
    commands = {
        "index": (curate, ["build-index", "--pool", str(pool), "--metadata", str(meta), "--workers", "1", "--out"]),
        "cur": (curate, ["balance", "--index", str(built.index), "--t", "5", "--workers", "1", "--out"]),
        "run": (train, ["--shards", spec, "--tokenizer", str(tmp_path / "tok"), "--steps", "2", "--batch-size", "4",
                        "--workers", "0", "--device", "cpu", "--out"]),
    }
    for name, (main, argv) in commands.items():
        out = tmp_path / name
        holder = hold_lock(out)
        try:
            capsys.readouterr()
            assert main([*argv, str(out)]) == 2
            err = capsys.readouterr().err
            assert "in use by another run" in err and "Traceback" not in err, err
            assert [p.name for p in out.iterdir()] == [".lock"], f"{name}: the refused run wrote into {out}"
        finally:
            holder.kill()
            holder.wait()
        assert main([*argv, str(out)]) == 0  # the lock dies with its holder: no stale-lock cleanup needed


def test_two_balance_runs_started_together(tmp_path):
    from harness import run

    built = index_factory.make_index(tmp_path, index_factory.synthetic_images(200, ENTRIES, seed=7), ENTRIES,
                                     sources=4)
    argv = ["curate", "balance", "--index", str(built.index), "--t", "20", "--shard-size", "10", "--workers", "1"]
    assert run([*argv, "--out", str(tmp_path / "clean")]).returncode == 0
    procs = [subprocess.Popen([str(Path(sys.executable).parent / "curate"), *argv[1:], "--out", str(tmp_path / "cur")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes in ([0, 0], [0, 2]), results  # the second either waited out a finished run or was refused
    for rc, err in results:
        if rc == 2:
            assert "in use by another run" in err and "Traceback" not in err, err
    a, b = curated_state(tmp_path / "clean"), curated_state(tmp_path / "cur")
    assert a[0] == b[0] and a[1].equals(b[1])
    assert shard_members(tmp_path / "cur" / "shards") == shard_members(tmp_path / "clean" / "shards")


@pytest.mark.parametrize("fail_at", [0, 2, 4])
def test_balance_disk_full_write_wrapper(tmp_path, monkeypatch, capsys, fail_at):
    """Where no tmpfs can be mounted: every Parquet write after the first `fail_at` raises ENOSPC."""
    import errno

    import pyarrow.parquet

    from curation.cli import main as curate

    built = index_factory.make_index(tmp_path, index_factory.synthetic_images(80, ENTRIES, seed=8), ENTRIES,
                                     sources=3, part_rows=30)
    argv = ["balance", "--index", str(built.index), "--t", "20", "--shard-size", "10", "--workers", "1"]
    assert curate([*argv, "--out", str(tmp_path / "clean")]) == 0
    real, calls = pyarrow.parquet.write_table, []

    def full(*args, **kwargs):
        calls.append(1)
        if len(calls) > fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(pyarrow.parquet, "write_table", full)
    out = tmp_path / "cur"
    capsys.readouterr()
    assert curate([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err and err.strip().count("\n") == 0, err
    assert not temp_files(out) and not (out / "stats.json").exists()
    monkeypatch.setattr(pyarrow.parquet, "write_table", real)
    assert curate([*argv, "--out", str(out)]) == 0
    a, b = curated_state(tmp_path / "clean"), curated_state(out)
    assert a[0] == b[0] and a[1].equals(b[1]) and a[3] == b[3]
