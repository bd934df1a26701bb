"""End-to-end `train`: loss falls on learnable shards; bad input gives one-line errors; NaN stops cleanly."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from training.train import TrainConfig, train


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "training.cli", *map(str, args)], capture_output=True, text=True)


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_loss_falls_and_run_is_complete(shards, tokenizer_dir, tmp_path):
    run = tmp_path / "run"
    r = run_cli("--shards", shards, "--tokenizer", tokenizer_dir, "--out", run, "--steps", 36, "--batch-size", 16,
                "--lr", 2e-3, "--warmup", 4, "--workers", 1, "--save-every", 18)
    assert r.returncode == 0, r.stderr[-2000:]
    m = rows(run)
    assert [x["step"] for x in m] == list(range(1, 37))
    first, last = sum(x["loss"] for x in m[:4]) / 4, sum(x["loss"] for x in m[-6:]) / 6
    assert last < first - 0.8, (first, last)
    assert {"lr", "samples_per_s", "data_wait", "logit_scale"} <= m[0].keys()
    assert (run / "plots" / "loss.png").stat().st_size > 0 and (run / "plots" / "lr.png").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000018.pt", "step_00000036.pt"]
    assert (run / "hf" / "model.safetensors").exists()
    assert "36 steps" in r.stderr


@pytest.mark.slow
def test_missing_shards_is_one_line_error(tokenizer_dir, tmp_path):
    r = run_cli("--shards", tmp_path / "nope/{00000..00009}.tar", "--tokenizer", tokenizer_dir,
                "--out", tmp_path / "run", "--steps", 2)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_flag_errors(shards, tokenizer_dir, tmp_path):
    r = run_cli("--shards", shards, "--tokenizer", tmp_path, "--out", tmp_path / "run", "--steps", 2)
    assert r.returncode == 2 and "sentencepiece.bpe.model" in r.stderr
    r = run_cli("--shards", shards, "--tokenizer", tokenizer_dir, "--out", tmp_path / "run", "--steps", 2,
                "--precision", "amp", "--device", "cpu")
    if r.returncode == 2:
        assert "GPU" in r.stderr
    r = run_cli("--shards", shards, "--tokenizer", tokenizer_dir, "--out", tmp_path / "run", "--steps", 2,
                "--curation-t", 10)
    assert r.returncode == 2 and "online" in r.stderr


@pytest.mark.slow
def test_all_corrupt_shards_are_a_clear_error(tmp_path, tokenizer_dir):
    from shard_factory import write_shards

    spec = write_shards(tmp_path / "c", 1, 4, extra={i: {"png": b"garbage"} for i in range(4)})
    r = run_cli("--shards", spec, "--tokenizer", tokenizer_dir, "--out", tmp_path / "run", "--steps", 2, "--workers", 0)
    assert r.returncode == 2 and "corrupt" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(shards, tokenizer_dir, tmp_path):
    from core.errors import UserError

    run = tmp_path / "run"
    cfg = TrainConfig(shards=shards, tokenizer=str(tokenizer_dir), out=str(run), steps=30, batch_size=8, lr=1e20,
                      warmup=1, workers=0, save_every=1)
    with pytest.raises(UserError, match=r"loss is nan.*Last good checkpoint: .*step_0000000\d\.pt") as e:
        train(cfg)
    kept = sorted((run / "checkpoints").iterdir())
    assert kept and str(kept[-1]) in str(e.value)
    import torch
    ck = torch.load(kept[-1], weights_only=False)
    assert ck["step"] == int(kept[-1].stem.split("_")[1])


@pytest.mark.slow
def test_features_change_what_they_should(shards, tokenizer_dir, tmp_path, capsys):
    import torch

    cfg = dict(shards=shards, tokenizer=str(tokenizer_dir), steps=2, batch_size=8, workers=0, warmup=1, lr=1e-3,
               shuffle_block=8)
    train(TrainConfig(out=str(tmp_path / "plain"), log=("tensorboard",), **cfg))
    assert "train: model tiny: 0.2M parameters (image tower 0.1M, text tower 0.1M)" in capsys.readouterr().err
    assert list((tmp_path / "plain" / "tensorboard").glob("events.out.tfevents.*"))
    train(TrainConfig(out=str(tmp_path / "flip"), patch_dropout=0.5, **cfg))
    plain, flip = rows(tmp_path / "plain")[0], rows(tmp_path / "flip")[0]
    assert plain["loss"] != flip["loss"]  # same init and batch: only the dropped patches differ

    train(TrainConfig(out=str(tmp_path / "siglip"), loss="siglip", layer_decay=0.5, **cfg))
    assert rows(tmp_path / "siglip")[0]["logit_scale"] == pytest.approx(10.0, rel=0.01)  # ln 10 at init, after one step
    ck = torch.load(tmp_path / "siglip" / "checkpoints" / "step_00000002.pt", weights_only=False)
    assert -10.0 != ck["model"]["logit_bias"].item() == pytest.approx(-10.0, abs=0.1)
    assert {g["lr_scale"] for g in ck["optimizer"]["param_groups"]} == {1.0, 0.5, 0.25, 0.125}


@pytest.mark.slow
def test_batch_larger_than_the_data_warns(tmp_path, tokenizer_dir, capsys):
    from shard_factory import write_shards

    spec = write_shards(tmp_path / "c", 1, 5)
    train(TrainConfig(shards=spec, tokenizer=str(tokenizer_dir), out=str(tmp_path / "run"), epochs=1, batch_size=64,
                      workers=0))
    err = capsys.readouterr().err
    assert "each step takes 64 samples" in err and "holds 5" in err and "--batch-size of at most 5" in err


@pytest.mark.parametrize("eval_data, needle", [("nowhere", "not found"), ("c/shards/{00000..00005}.tar", "shard ")])
def test_eval_data_is_checked_before_any_step(shards, tokenizer_dir, tmp_path, eval_data, needle):
    """A wrong --eval-data used to fail only after the whole run had trained."""
    from shard_factory import write_shards

    write_shards(tmp_path / "c", 2, 4)
    data = str(tmp_path / eval_data)
    run = tmp_path / "run"
    r = run_cli("--shards", shards, "--tokenizer", tokenizer_dir, "--out", run, "--steps", 2, "--workers", 0,
                "--eval-data", data, "--device", "cpu")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "--eval-data" in lines[0] and needle in lines[0] and str(tmp_path) in lines[0], lines[0]
    assert not (run / "metrics.jsonl").exists() and not (run / "checkpoints").exists()
