"""Shares one small quickstart run between the pipeline and notebook tests."""
from __future__ import annotations

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
def small_demo(tmp_path_factory) -> Path:
    from pipelines import quickstart

    out = tmp_path_factory.mktemp("quickstart") / "demo_out"
    report = quickstart.run_quickstart(out, quickstart.SMALL, workers=2)
    assert report == out / "REPORT.md"
    return out
