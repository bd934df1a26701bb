"""Shares one small quickstart run between the pipeline and notebook tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    from pipelines import quickstart

    out = tmp_path_factory.mktemp("quickstart") / "demo_out"
    report = quickstart.run_quickstart(out, quickstart.SMALL, workers=2)
    assert report == out / "REPORT.md"
    return out
