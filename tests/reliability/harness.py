"""Fault-injection helpers shared by the reliability tests: run the real CLIs as subprocesses, SIGKILL
them at seeded points, compare finished outputs, and reuse the stage tests' input factories.

The stage tests' input factories (pool_factory, index_factory in tests/curation; shard_factory in
tests/training) are importable here through pyproject's pytest `pythonpath`.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

import index_factory
import pool_factory as curation_inputs
import shard_factory as training_inputs  # noqa: F401  (re-exported to the tests)

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
VENV_BIN = Path(sys.executable).parent
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "RAY_USAGE_STATS_ENABLED": "0",
       "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1", "RAY_AUTH_MODE": "disabled"}


def start(argv: list[str], log: Path) -> subprocess.Popen:
    """Start a real console script (curate/train) in its own process group, output to `log`."""
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(VENV_BIN / argv[0]), *argv[1:]], stdout=f, stderr=subprocess.STDOUT, env=ENV,
                                start_new_session=True, cwd=str(ROOT))
    proc.log = log
    return proc


def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / argv[0]), *argv[1:]], capture_output=True, text=True, env=ENV,
                          timeout=timeout, cwd=str(ROOT))


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the whole job (driver and every process it started), as a crashed machine would."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], seed: int, max_delay: float,
              timeout: float = 180) -> bool:
    """Wait until `ready()` (e.g. the Nth output file exists), then a seeded random delay, then SIGKILL.
    Returns True if the job was killed while still running (False: it finished first)."""
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None or time.time() > deadline:
            break
        time.sleep(0.005)
    time.sleep(random.Random(seed).uniform(0, max_delay))
    alive = proc.poll() is None
    kill_group(proc)
    if not alive and proc.returncode != 0:
        raise AssertionError(f"the job failed before it was killed (exit {proc.returncode}): "
                             f"{Path(proc.args[0]).name} {' '.join(proc.args[1:])}\n{proc.log.read_text()[-3000:]}")
    return alive


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def count_files(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def temp_files(folder: Path) -> list[Path]:
    """Leftover temp files (atomic writes not renamed) anywhere under `folder`."""
    return [p for p in folder.rglob("*.tmp")] + [p for p in folder.rglob(".tmp-*")]


def read_parquet_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def shard_members(folder: Path) -> dict[str, dict[str, bytes]]:
    """Every shard's members: {shard name: {member name: bytes}}."""
    import tarfile

    out = {}
    for tar_path in sorted(folder.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            out[tar_path.name] = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    return out


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def big_pool(folder: Path, rows: int) -> Path:
    texts = [t for t, lang in curation_inputs.POOL_TEXTS[:10] if lang == "en"]
    folder.mkdir(parents=True)
    for f in range(2):
        pq.write_table(pa.table({"text": [f"{texts[i % len(texts)]} {f} {i}" for i in range(rows)],
                                 "lang": ["en"] * rows}), folder / f"big{f}.parquet", row_group_size=1000)
    return folder


def index_state(out: Path) -> tuple:
    from curation.index import read_matches

    rows = [tuple(str(v) for v in r.values()) for r in read_matches(out).to_pylist()]
    m = manifest(out)
    return (out / "counts.parquet").read_bytes(), sorted(rows), m["totals"], m["per_lang"], sorted(m["parts"])


ENTRIES = index_factory.entries_table({"en": 12, "de": 8, "ja": 5})


def curated_state(cur: Path) -> tuple:
    stats = json.loads((cur / "stats.json").read_text())
    return (shard_members(cur / "shards"), pq.read_table(cur / "curated.parquet"),
            pq.read_table(cur / "thresholds.parquet"), stats["totals"])
