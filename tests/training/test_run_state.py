"""Elastic, never-silent resume: 2 -> 1 processes and --workers 1 -> 2 continue the straight run exactly."""
from __future__ import annotations

import shutil

import pytest
import torch

from launch import hf_weights, metric_rows, step_uids, torchrun

WEIGHT_ATOL = 1e-5  # fp32; the gradient sums run in another order on another process count


def crash_after(run, crashed, step: str):
    """A copy of a finished run as if killed after `step`'s checkpoint (later checkpoints, export and lock gone)."""
    shutil.copytree(run, crashed, ignore=shutil.ignore_patterns(step, "hf", ".lock"))


def assert_same_run(a, b, steps: int):
    assert step_uids(a) == step_uids(b) and len(step_uids(a)) == steps
    assert [r["step"] for r in metric_rows(b)] == list(range(1, steps + 1))
    wa, wb = hf_weights(a), hf_weights(b)
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=WEIGHT_ATOL), k


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_two_processes_resume_on_one(online_shards, tokenizer_dir, tmp_path, fsdp):
    flags = ["--fsdp"] if fsdp else []
    common = ["--shards", online_shards, "--tokenizer", tokenizer_dir, "--steps", 4, "--workers", 1, "--save-every", 2,
              "--log-samples", "--shuffle-block", 8, "--seed", 5, "--lr", 1e-3, "--warmup", 1, "--gather-with-grad",
              *flags]
    straight = tmp_path / "straight"
    r = torchrun(2, *common, "--batch-size", 4, "--out", straight)
    assert r.returncode == 0, r.stderr[-3000:]
    crashed = tmp_path / "crashed"
    crash_after(straight, crashed, "step_00000004*")
    if fsdp:  # a save killed after some shards were written: no COMMIT.json, so never trusted
        shutil.copytree(straight / "checkpoints" / "step_00000004", crashed / "checkpoints" / "step_00000004",
                        ignore=shutil.ignore_patterns("COMMIT.json", "train_state.pt"))
        bad = torchrun(1, *common, "--batch-size", 8, "--out", crashed,
                       "--resume", crashed / "checkpoints" / "step_00000004")
        assert bad.returncode == 2 and "COMMIT.json" in bad.stderr.strip().splitlines()[-1]
    wrong = torchrun(1, *common, "--batch-size", 4, "--out", crashed, "--resume", "latest")
    last = wrong.stderr.strip().splitlines()[-1]
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "global batch was 8" in last and "product is 8" in last
    r = torchrun(1, *common, "--batch-size", 8, "--out", crashed, "--resume", "latest")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in r.stderr and "step_00000002" in r.stderr
    assert_same_run(straight, crashed, 4)


@pytest.mark.slow
def test_resume_with_more_workers(shards, tokenizer_dir, tmp_path):
    common = ["--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 4, "--batch-size", 4, "--save-every", 2,
              "--log-samples", "--shuffle-block", 8, "--seed", 2, "--lr", 1e-3, "--warmup", 1]
    straight = tmp_path / "straight"
    r = torchrun(1, *common, "--workers", 1, "--lanes", 2, "--out", straight)
    assert r.returncode == 0, r.stderr[-3000:]
    crashed = tmp_path / "crashed"
    crash_after(straight, crashed, "step_00000004*")
    wrong = torchrun(1, *common, "--workers", 2, "--lanes", 4, "--out", crashed, "--resume", "latest")
    assert wrong.returncode == 2 and "pass --lanes 2" in wrong.stderr.strip().splitlines()[-1]
    r = torchrun(1, *common, "--workers", 2, "--out", crashed, "--resume", "latest")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_run(straight, crashed, 4)
