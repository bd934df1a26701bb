"""--fsdp: 2-process gloo FSDP2 equals DDP (losses and weights) with the features it must compose with."""
from __future__ import annotations

import pytest
import torch

from launch import hf_weights, metric_rows, torchrun
from training.fsdp import blocks, per_rank_bytes

# fp32 on both sides; only the order of the gradient reduction differs (reduce-scatter vs all-reduce).
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-5


def test_blocks_are_every_transformer_layer_of_both_towers():
    from training.models import build_model

    model = build_model("tiny", 100)
    assert len(blocks(model)) == 4 and all(type(b).__name__.endswith("EncoderLayer") for b in blocks(model))


def test_fsdp_holds_one_nth_of_the_state_per_rank():
    assert per_rank_bytes(1000, 2, fsdp=True) * 2 == per_rank_bytes(1000, 2, fsdp=False) == 16000


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--accum-freq", 2, "--gather-with-grad", "--local-loss", "--grad-checkpointing"]],
                         ids=["plain", "accum-gather-local-ckpt"])
def test_fsdp_equals_ddp_on_two_gloo_processes(shards, tokenizer_dir, tmp_path, extra):
    common = ["--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 3, "--batch-size", 4, "--workers", 0,
              "--lr", 1e-3, "--warmup", 1, "--seed", 3, *extra]
    runs = {}
    for name, flags in (("ddp", []), ("fsdp", ["--fsdp"])):
        runs[name] = tmp_path / name
        r = torchrun(2, *common, *flags, "--out", runs[name])
        assert r.returncode == 0, r.stderr[-3000:]
    a, b = metric_rows(runs["ddp"]), metric_rows(runs["fsdp"])
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=LOSS_RTOL)
    wa, wb = hf_weights(runs["ddp"]), hf_weights(runs["fsdp"])
    assert wa.keys() == wb.keys()
    moved = 0
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=WEIGHT_ATOL), k
        moved += not torch.equal(wa[k], wb[k])
    assert any((runs["fsdp"] / "checkpoints" / "step_00000003").glob("*.distcp"))


@pytest.mark.slow
def test_fsdp_bf16_trains(shards, tokenizer_dir, tmp_path):
    r = torchrun(2, "--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 2, "--batch-size", 4, "--workers", 0,
                 "--fsdp", "--precision", "bf16", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = metric_rows(tmp_path / "run")
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(x["loss"])) for x in rows)
    assert all(v.dtype == torch.float32 for v in hf_weights(tmp_path / "run").values())  # fp32 master weights
