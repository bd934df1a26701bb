"""RUN folder: a second run without --resume is refused, --overwrite starts again (never deleting an input),
and resuming after a kill during the first checkpoint save logs every step once."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from core.errors import UserError
from training.train import TrainConfig, train


def base(shards, tokenizer_dir, run, **kw):
    return TrainConfig(**{**dict(shards=shards, tokenizer=str(tokenizer_dir), out=str(run), steps=2, batch_size=4,
                                 workers=0, warmup=1, save_every=2, shuffle_block=8), **kw})


def steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_second_run_is_refused_until_resume_or_overwrite(shards, tokenizer_dir, tmp_path):
    run = tmp_path / "run"
    train(base(shards, tokenizer_dir, run))
    r = subprocess.run([sys.executable, "-m", "training.cli", "--shards", shards, "--tokenizer", str(tokenizer_dir),
                        "--out", str(run), "--steps", "2", "--workers", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "already holds a training run" in r.stderr and "--resume latest" in r.stderr and "--overwrite" in r.stderr
    train(base(shards, tokenizer_dir, run, steps=3, save_every=3, overwrite=True, seed=1))
    assert steps(run / "metrics.jsonl") == [1, 2, 3]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000003.pt"]
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    with pytest.raises(UserError, match="pass one of them"):
        train(base(shards, tokenizer_dir, run, overwrite=True, resume="latest"))


def test_overwrite_never_deletes_an_input(shards, tokenizer_dir, tmp_path):
    run = tmp_path / "run"
    (run / "hf").mkdir(parents=True)
    (run / "hf" / "model.safetensors").write_bytes(b"x")
    (run / "metrics.jsonl").write_text("")
    with pytest.raises(UserError, match=r"--overwrite would delete .*hf, which holds the input"):
        train(base(shards, tokenizer_dir, run, overwrite=True, init_from=str(run / "hf")))
    assert (run / "hf" / "model.safetensors").exists() and (run / "metrics.jsonl").exists()


@pytest.mark.slow
def test_resume_after_kill_during_first_checkpoint_save_logs_each_step_once(shards, tokenizer_dir, tmp_path):
    cfg = dict(steps=4, save_every=4, log_samples=True)
    straight = tmp_path / "straight"
    train(base(shards, tokenizer_dir, straight, **cfg))
    killed = tmp_path / "killed"  # all 4 steps logged, then killed while writing the first checkpoint
    shutil.copytree(straight, killed, ignore=shutil.ignore_patterns("step_*.pt", "hf", ".lock"))
    (killed / "checkpoints" / ".step_00000004.pt.abc123.tmp").write_bytes(b"partial")
    with pytest.raises(UserError, match="--resume latest"):
        train(base(shards, tokenizer_dir, killed, **cfg))
    train(base(shards, tokenizer_dir, killed, resume="latest", **cfg))
    assert steps(killed / "metrics.jsonl") == [1, 2, 3, 4]
    assert (killed / "samples" / "rank0.jsonl").read_text() == (straight / "samples" / "rank0.jsonl").read_text()
    assert not list((killed / "checkpoints").glob(".*.tmp"))


@pytest.mark.slow
def test_resume_with_other_model_or_optimizer_flags_is_one_line(shards, tokenizer_dir, tmp_path):
    run = tmp_path / "run"
    train(base(shards, tokenizer_dir, run))
    with pytest.raises(UserError, match="resume with the flags it was written with: loss=clip"):
        train(base(shards, tokenizer_dir, run, steps=3, resume="latest", loss="siglip"))
    with pytest.raises(UserError, match="layer_decay=None"):
        train(base(shards, tokenizer_dir, run, steps=3, resume="latest", layer_decay=0.5))
