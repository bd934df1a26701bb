"""Shares one small quickstart run between the pipeline and notebook tests, and between pytest processes."""
from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

# The small quickstart runs every real command (metadata build, Ray build-index, two balances, 4 tiny
# trainings, the per-class ablation): a few minutes on an idle 2-core machine, more when the cores are
# shared. Its setup is charged to the first test that asks for it, so those tests get a longer limit.
SMALL_DEMO_TIMEOUT_S = 1500


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "small_demo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(SMALL_DEMO_TIMEOUT_S))


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory, worker_id: str) -> Path:
    """One run per `pytest` command: under `pytest -n` the first process to ask builds it in the folder all the
    processes share (pytest-N/) while holding a lock; the others wait for the lock and read the finished run."""
    from pipelines import quickstart

    root = tmp_path_factory.getbasetemp()
    root = root if worker_id == "master" else root.parent
    out = root / "small_demo" / "demo_out"
    with open(root / "small_demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "REPORT.md").is_file():
            assert quickstart.run_quickstart(out, quickstart.SMALL, workers=2) == out / "REPORT.md"
    return out
