"""build-index's driver on forked workers (--workers N, no --ray-address): META read once, the INDEX bytes of
one worker and of Ray actors, a worker's UserError as one line, a killed worker stopping the run with a
one-line error and a rerun resuming to the same INDEX.

No Ray fixture here: a Ray initialised in this process would be reused, i.e. take the forked runs' place."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import curation.build_index_run as run
import curation.executor as executor
from core.errors import UserError
from curation import fork_pool
from curation.build_index_run import build_index
from curation.cli import main as curate
from metadata.store import read_entries
from pool_factory import repeated_pool, write_parquet_pool

pytestmark = pytest.mark.slow


def index_files(out: Path) -> dict[str, bytes]:
    """The bytes of an INDEX's part files, counts and entries (journal and manifest hold timings)."""
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*"))
            if f.is_file() and f.suffix in (".parquet", ".npz")}


@pytest.fixture()
def pool(tmp_path) -> Path:
    return write_parquet_pool(tmp_path / "pool", repeated_pool(20), files=2, row_group_size=9)


def inject(monkeypatch, fault) -> None:
    """Run `fault(part, out)` in the worker before each part (forked workers inherit the patch)."""
    real = run.process_and_write

    def wrapped(proc, out, part):
        fault(part, out)
        return real(proc, out, part)

    monkeypatch.setattr(run, "process_and_write", wrapped)


def test_forked_run_equals_one_worker_and_ray(meta_dir, pool, tmp_path, monkeypatch):
    forks, loads, real_run = [], [], fork_pool.run
    monkeypatch.setattr(fork_pool, "run", lambda *a, **kw: forks.append(kw["n"]) or real_run(*a, **kw))
    monkeypatch.setattr(executor, "ensure_ray", lambda *a: pytest.fail("a local --workers 2 run started Ray"))
    monkeypatch.setattr(run, "store_read", lambda meta: loads.append(meta) or read_entries(meta))
    forked = build_index([str(pool)], str(meta_dir), str(tmp_path / "fork"), workers=2, part_size=11)
    assert forks == [2] and loads == [str(meta_dir)]
    build_index([str(pool)], str(meta_dir), str(tmp_path / "one"), workers=1, part_size=11)
    monkeypatch.undo()
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        build_index([str(pool)], str(meta_dir), str(tmp_path / "ray"), workers=2, part_size=11)
    finally:
        ray.shutdown()
    files = index_files(tmp_path / "fork")
    assert len(files) > 20 and len(forked["parts"]) > 10
    assert files == index_files(tmp_path / "one") == index_files(tmp_path / "ray")


def test_user_error_in_a_forked_worker_is_one_line(meta_dir, pool, tmp_path, monkeypatch, capsys):
    def refuse(part, out):
        if part.part == 3:
            raise UserError(f"part {part.part}: refused by the test; rerun the same command to resume")

    inject(monkeypatch, refuse)
    rc = curate(["build-index", "--pool", str(pool), "--metadata", str(meta_dir), "--out", str(tmp_path / "index"),
                 "--workers", "2", "--part-size", "11"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last == "curate: error: part 3: refused by the test; rerun the same command to resume"


def test_killed_worker_stops_the_run_and_a_rerun_resumes(meta_dir, pool, tmp_path, monkeypatch):
    def die_on_part_5(part, out):
        if part.part != 5:
            return
        journal, deadline = Path(out) / "parts.jsonl", time.time() + 60
        while (not journal.exists() or journal.read_bytes().count(b"\n") < 2) and time.time() < deadline:
            time.sleep(0.01)  # let the other worker finish parts first, so the rerun has some to resume
        os.kill(os.getpid(), signal.SIGKILL)

    build_index([str(pool)], str(meta_dir), str(tmp_path / "clean"), workers=1, part_size=11)
    out = tmp_path / "index"
    inject(monkeypatch, die_on_part_5)
    with pytest.raises(UserError) as e:
        build_index([str(pool)], str(meta_dir), str(out), workers=2, part_size=11)
    assert str(e.value).startswith("a worker died while processing part 5 (") and "\n" not in str(e.value)
    assert str(e.value).endswith("(killed by signal 9); rerun the same command to resume")
    monkeypatch.undo()
    again = build_index([str(pool)], str(meta_dir), str(out), workers=2, part_size=11)
    assert again["complete"] and again["resumed_parts"] >= 2
    assert index_files(out) == index_files(tmp_path / "clean")
    assert not list(out.rglob("*.tmp"))
