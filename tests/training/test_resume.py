"""Exact resume: 2N steps straight == N steps + crash + `--resume latest` + N steps (uids in order, weights)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from training.train import TrainConfig, train


def steps_uids(run):
    return [json.loads(line) for line in (run / "samples" / "rank0.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("online", [False, True])
def test_resume_continues_the_same_stream_and_weights(shards, online_shards, tokenizer_dir, tmp_path, online):
    spec = online_shards if online else shards
    cfg = dict(shards=spec, tokenizer=str(tokenizer_dir), steps=8, batch_size=4, accum_freq=2, lr=1e-3, warmup=2,
               workers=2, save_every=4, log_samples=True, shuffle_block=8, seed=5)
    straight = tmp_path / "straight"
    train(TrainConfig(out=str(straight), **cfg))

    crashed = tmp_path / "crashed"  # a run that died after step 8 was logged but before its checkpoint
    shutil.copytree(straight, crashed, ignore=shutil.ignore_patterns("step_00000008.pt", "hf", ".lock"))
    train(TrainConfig(out=str(crashed), resume="latest", **cfg))

    a, b = steps_uids(straight), steps_uids(crashed)
    assert [r["step"] for r in b] == list(range(1, 9))
    assert a == b
    assert len({u for r in a for u in r["uids"]}) > 8
    metrics = [json.loads(line)["step"] for line in (crashed / "metrics.jsonl").read_text().splitlines()]
    assert metrics == list(range(1, 9))
    wa = torch.load(straight / "checkpoints" / "step_00000008.pt", weights_only=False)
    wb = torch.load(crashed / "checkpoints" / "step_00000008.pt", weights_only=False)
    assert wa["loader"] == wb["loader"]
    for k, v in wa["model"].items():
        assert torch.allclose(v, wb["model"][k], atol=1e-6), k
    if online:
        assert wa["loader"]["dropped"] > 0
