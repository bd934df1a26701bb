"""Metric sinks: TensorBoard scalars (a resume drops the steps after the checkpoint), W&B offline runs."""
from __future__ import annotations

import pytest

from core.errors import UserError
from training.loggers import MetricSinks


def tensorboard_scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)]


@pytest.mark.slow
def test_tensorboard_logs_scalars_and_a_resume_replaces_later_steps(tmp_path):
    pytest.importorskip("tensorboard")
    sinks = MetricSinks(["tensorboard"], tmp_path, {})
    for step in range(1, 6):
        sinks.log({"step": step, "loss": float(step), "lr": 0.1, "note": "text"})
    sinks.close()
    resumed = MetricSinks(["tensorboard"], tmp_path, {}, resumed_step=3)
    for step in (4, 5):
        resumed.log({"step": step, "loss": 10.0 + step, "lr": 0.1})
    resumed.close()
    assert tensorboard_scalars(tmp_path / "tensorboard", "train/loss") == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 14.0),
                                                                           (5, 15.0)]
    again = MetricSinks(["tensorboard"], tmp_path, {})  # --resume latest before any checkpoint: from step 1
    again.log({"step": 1, "loss": 7.0})
    again.close()
    assert tensorboard_scalars(tmp_path / "tensorboard", "train/loss") == [(1, 7.0)]


@pytest.mark.slow
def test_wandb_writes_an_offline_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    sinks = MetricSinks(["wandb"], tmp_path, {"lr": 0.1})
    for step in range(1, 4):
        sinks.log({"step": step, "loss": 1.0 / step})
    sinks.close()
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and b"train/loss" in runs[0].read_bytes()
    run_id = (tmp_path / "wandb" / "run_id").read_text()
    assert runs[0].name == f"run-{run_id}.wandb"
    MetricSinks(["wandb"], tmp_path, {}, resumed_step=2).close()
    assert (tmp_path / "wandb" / "run_id").read_text() == run_id  # a resume continues the W&B run
    MetricSinks(["wandb"], tmp_path, {}).close()
    assert (tmp_path / "wandb" / "run_id").read_text() != run_id  # a fresh run (--overwrite) starts another


def test_missing_package_is_a_one_line_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # what an environment without wandb imports
    with pytest.raises(UserError, match="pip install wandb"):
        MetricSinks(["wandb"], tmp_path, {})
