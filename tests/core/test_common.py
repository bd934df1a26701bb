"""Atomic writes, output locks and the CLI's one-line errors."""
import errno
import json
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import atomic, locks, outputs
from core.errors import UserError


def test_atomic_write_leaves_no_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "t.parquet"
    atomic.write_parquet_atomic(target, pa.table({"a": [1, 2]}))
    atomic.write_parquet_atomic(target, pa.table({"a": [3]}))
    assert pq.read_table(target).column("a").to_pylist() == [3]
    atomic.write_json_atomic(tmp_path / "m.json", {"ü": 1})
    assert atomic.read_json(tmp_path / "m.json") == {"ü": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "t.parquet"]


def test_disk_full_is_a_user_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(UserError, match="disk full"):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        atomic.read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(UserError, match="bad.json"):
        atomic.read_json(bad)


@pytest.mark.slow
def test_second_run_is_refused_while_lock_held(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from core.locks import output_lock; from core.errors import UserError
        try:
            with output_lock({str(tmp_path)!r}):
                pass
        except UserError as e:
            print("refused:", e); sys.exit(3)
    """)
    with locks.output_lock(tmp_path):
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert r.returncode == 3 and "in use by another run" in r.stdout
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_file_fingerprint_changes_with_content(tmp_path):
    f = tmp_path / "a"
    f.write_bytes(b"1")
    a = outputs.file_fingerprint(f)
    f.write_bytes(b"22")
    assert outputs.file_fingerprint(f) != a
    assert outputs.content_hash(f) == outputs.content_hash(f)


def test_cli_user_error_is_one_line(capsys):
    import argparse

    from core.cli import run

    parser = argparse.ArgumentParser(prog="curate")

    def fail(args):
        raise UserError("pool.parquet: row 7: no text column")

    parser.set_defaults(func=fail)
    assert run(parser, []) == 2
    err = capsys.readouterr().err
    assert err == "curate: error: pool.parquet: row 7: no text column\n"


@pytest.mark.slow
def test_console_scripts_help():
    for cmd in (["curate", "--help"], ["train", "--help"]):
        exe = os.path.join(os.path.dirname(sys.executable), cmd[0])
        r = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "usage:" in r.stdout


def test_forked_child_does_not_keep_the_lock(tmp_path):
    """A DataLoader-style forked child that outlives its parent must not hold the output lock."""
    import time

    script = textwrap.dedent(f"""
        import os, time
        from core.locks import output_lock
        with output_lock({str(tmp_path)!r}):
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                time.sleep(20)
                os._exit(0)
            os._exit(0)  # parent dies holding the lock; the child lives on
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    with locks.output_lock(tmp_path, wait_s=0):
        pass
    assert time.monotonic() - t0 < 1


def _identity() -> dict:
    return {"version": 1, "options": {"a": 1}}


def test_overwrite_never_removes_an_input(tmp_path):
    """--out is the input folder, or an output name is the input or holds it: --overwrite refuses, removes nothing."""
    meta = tmp_path / "META"
    meta.mkdir()
    (meta / "entries.parquet").write_bytes(b"x")
    (meta / "manifest.json").write_text(json.dumps({**_identity(), "format": "worldclip-meta/1"}))
    for out, inp in [(meta, meta), (tmp_path, meta / "entries.parquet"), (meta, meta / "entries.parquet")]:
        with pytest.raises(UserError, match=r"--overwrite would remove .* which is \(or holds\) the input --x"):
            outputs.prepare_output(out, _identity(), ["entries.parquet", "manifest.json", "META"], True, "an X",
                                  inputs={"--x": [str(inp)]})
    assert sorted(p.name for p in meta.iterdir()) == ["entries.parquet", "manifest.json"]


def test_overwrite_removes_only_what_the_tool_wrote(tmp_path):
    """A folder whose files were not written by this command (no manifest of its kind) is left alone."""
    out = tmp_path / "mine"
    (out / "shards").mkdir(parents=True)
    (out / "shards" / "holiday.jpg").write_bytes(b"photo")
    with pytest.raises(UserError, match="has no manifest.json of a CURATED.*nothing was removed"):
        outputs.prepare_output(out, _identity(), ["shards", "manifest.json"], True, "a CURATED")
    assert (out / "shards" / "holiday.jpg").exists()
    (out / "manifest.json").write_text(json.dumps(_identity()))
    assert outputs.prepare_output(out, _identity(), ["shards", "manifest.json"], True, "a CURATED") is None
    assert list(out.iterdir()) == []
