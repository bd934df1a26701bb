"""LR schedule: warmup + cosine; a resumed run with another total follows the recomputed schedule and says so."""
from __future__ import annotations

import json

import pytest
import torch

from training.schedule import apply_schedule, lr_lambda
from training.train import TrainConfig, train


def test_warmup_then_cosine_to_zero():
    f = lr_lambda(2, 10)
    assert [f(0), f(1), f(2)] == [0.5, 1.0, 1.0]
    assert f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0) and f(20) == pytest.approx(0.0)


def test_apply_schedule_sets_the_new_schedules_lr_and_keeps_an_unchanged_one():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [p], "lr": 1.0}])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(2, 10))
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)
    apply_schedule(sched, 10)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)
    sched.lr_lambdas = [lr_lambda(2, 20)]
    apply_schedule(sched, 10)
    assert opt.param_groups[0]["lr"] == pytest.approx(lr_lambda(2, 20)(10))
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


@pytest.mark.slow
def test_extending_a_finished_run_warns_and_follows_the_longer_schedule(shards, tokenizer_dir, tmp_path, capsys):
    cfg = dict(shards=shards, tokenizer=str(tokenizer_dir), out=str(tmp_path / "run"), batch_size=4, workers=0,
               warmup=2, lr=1e-3, save_every=100, shuffle_block=8)
    train(TrainConfig(steps=4, **cfg))
    capsys.readouterr()
    train(TrainConfig(steps=8, resume="latest", **cfg))
    err = capsys.readouterr().err
    assert "planned for 4" in err and "recomputed for 8 steps" in err
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[3]["lr"] == pytest.approx(1e-3 * lr_lambda(2, 4)(3))
    assert [r["lr"] for r in rows[4:]] == pytest.approx([1e-3 * lr_lambda(2, 8)(k) for k in range(4, 8)])
    assert rows[4]["lr"] > 0
