"""`train` on a real S3 server (rclone on 127.0.0.1): shards, tokenizer and RUN in a bucket, resume from there."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core import storage
from launch import torchrun


def upload(folder: Path, url: str) -> None:
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        storage.write_bytes(storage.join(url, f.relative_to(folder).as_posix()), f.read_bytes())


def jsonl(url: str) -> list[dict]:
    return [json.loads(x) for x in storage.read_bytes(url).decode().splitlines()]


def final_model(run: str, fsdp: bool) -> dict:
    if fsdp:
        from safetensors.torch import load

        return load(storage.read_bytes(storage.join(run, "hf", "model.safetensors")))
    from training.checkpoint import load_checkpoint

    return load_checkpoint(storage.join(run, "checkpoints", "step_00000004.pt"))["model"]


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_train_from_and_to_s3_resumes_like_the_local_run(s3, online_shards, tokenizer_dir, tmp_path, fsdp, monkeypatch):
    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(tmp_path / "scratch"))  # the tokenizer's copy, removed with tmp_path
    curated = Path(online_shards.split("/shards/")[0])
    upload(curated, s3.url("curated"))
    upload(tokenizer_dir, s3.url("tok"))
    common = ["--steps", 4, "--batch-size", 4, "--workers", 1, "--save-every", 2, "--log-samples", "--shuffle-block", 8,
              "--seed", 4, "--lr", 1e-3, "--warmup", 1, *(["--fsdp"] if fsdp else [])]
    local = tmp_path / "local"
    r = torchrun(1, "--shards", online_shards, "--tokenizer", tokenizer_dir, "--out", local, *common,
                 "--eval-data", online_shards)
    assert r.returncode == 0, r.stderr[-3000:]

    run = s3.url("run")
    remote = ["--shards", s3.url("curated", "shards", "{00000..00003}.tar"), "--tokenizer", s3.url("tok"), "--out", run, *common]
    r = torchrun(1, *remote)
    assert r.returncode == 0, r.stderr[-3000:]
    last = storage.join(run, "checkpoints", "step_00000004" + ("" if fsdp else ".pt"))
    storage.remove(last)  # as if killed before the last checkpoint was committed
    storage.remove(storage.join(run, "hf"))
    eval_data = s3.url("curated", "shards", "{00000..00003}.tar")
    r = torchrun(1, *remote, "--resume", "latest", "--eval-data", eval_data)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from s3://" in r.stderr and "step_00000002" in r.stderr

    assert jsonl(storage.join(run, "samples", "rank0.jsonl")) == jsonl(str(local / "samples" / "rank0.jsonl"))
    assert [x["step"] for x in jsonl(storage.join(run, "metrics.jsonl"))] == [1, 2, 3, 4]
    a, b = final_model(str(local), fsdp), final_model(run, fsdp)
    for k, v in a.items():
        assert torch.allclose(v, b[k], atol=1e-6), k
    if fsdp:
        assert storage.isfile(storage.join(last, "COMMIT.json")) and storage.isfile(storage.join(last, ".metadata"))
    assert storage.isfile(storage.join(run, "hf", "config.json"))
    evaluated, expected = storage.read_json(storage.join(run, "eval.json")), json.loads((local / "eval.json").read_text())
    assert len(list((tmp_path / "scratch" / "worldclip-copies").iterdir())) == 1  # the tokenizer, copied once
    assert evaluated["data"] == eval_data and evaluated["counts"] == expected["counts"] and evaluated["retrieval"]
