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


def ddp_and_fsdp_runs(tmp_path, flags: list) -> dict:
    """Train with `flags` on 2 gloo processes, once under DDP and once with --fsdp; the two RUN folders."""
    runs = {"ddp": tmp_path / "ddp", "fsdp": tmp_path / "fsdp"}
    for name, extra in (("ddp", []), ("fsdp", ["--fsdp"])):
        r = torchrun(2, *flags, *extra, "--out", runs[name])
        assert r.returncode == 0, r.stderr[-3000:]
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--accum-freq", 2, "--gather-with-grad", "--local-loss",
                                        "--grad-checkpointing"]],
                         ids=["plain", "accum-gather-local-ckpt"])
def test_fsdp_equals_ddp_on_two_gloo_processes(shards, tokenizer_dir, tmp_path, extra):
    common = ["--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 3, "--batch-size", 4, "--workers", 0,
              "--lr", 1e-3, "--warmup", 1, "--seed", 3, *extra]
    runs = ddp_and_fsdp_runs(tmp_path, common)
    a, b = metric_rows(runs["ddp"]), metric_rows(runs["fsdp"])
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=LOSS_RTOL)
    wa, wb = hf_weights(runs["ddp"]), hf_weights(runs["fsdp"])
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=WEIGHT_ATOL), k
    assert any((runs["fsdp"] / "checkpoints" / "step_00000003").glob("*.distcp"))


@pytest.mark.slow
def test_fsdp_bf16_trains(shards, tokenizer_dir, tmp_path):
    r = torchrun(2, "--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 2, "--batch-size", 4, "--workers", 0,
                 "--fsdp", "--precision", "bf16", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = metric_rows(tmp_path / "run")
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(x["loss"])) for x in rows)
    assert all(v.dtype == torch.float32 for v in hf_weights(tmp_path / "run").values())  # fp32 master weights


@pytest.mark.slow
def test_fsdp_with_siglip_and_lock_image_equals_ddp_resumes_and_exports_the_bias(shards, tokenizer_dir, tmp_path):
    """--loss siglip --lock-image under --fsdp: the same losses and weights as DDP, a sharded resume that continues
    them, and an exported folder whose config carries the learnt bias (not a stray `logit_bias` weight)."""
    import shutil

    from transformers import MetaClip2Model

    from training.loss import SIGLIP_INIT_BIAS
    from training.towers import tower_of

    common = ["--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 4, "--batch-size", 4, "--workers", 0,
              "--lr", 1e-2, "--warmup", 1, "--seed", 3, "--save-every", 2, "--loss", "siglip", "--lock-image"]
    runs = ddp_and_fsdp_runs(tmp_path, common)
    a, b = metric_rows(runs["ddp"]), metric_rows(runs["fsdp"])
    assert [y["loss"] for y in b] == pytest.approx([x["loss"] for x in a], rel=LOSS_RTOL)
    wa, wb = hf_weights(runs["ddp"]), hf_weights(runs["fsdp"])
    assert wa.keys() == wb.keys() and "logit_bias" not in wb
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=WEIGHT_ATOL), k
    first = MetaClip2Model.from_pretrained(runs["ddp"] / "hf")

    # a resume from the sharded step-2 checkpoint continues the same run (frozen tower and bias included)
    resumed = tmp_path / "resumed"
    shutil.copytree(runs["fsdp"], resumed, ignore=shutil.ignore_patterns("step_00000004", "hf", ".lock"))
    r = torchrun(2, *common, "--fsdp", "--out", resumed, "--resume", "latest")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "step_00000002" in r.stderr
    assert [x["loss"] for x in metric_rows(resumed)] == pytest.approx([x["loss"] for x in b], rel=LOSS_RTOL)

    for run in (runs["fsdp"], resumed):
        model, info = MetaClip2Model.from_pretrained(run / "hf", output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        assert model.config.logit_bias == pytest.approx(first.config.logit_bias, abs=1e-5)
        assert model.config.logit_bias != pytest.approx(SIGLIP_INIT_BIAS)  # learnt, not the init value
        state, ddp_state = model.state_dict(), first.state_dict()
        for k, v in state.items():
            if tower_of(k) == "vision":  # frozen: DDP's tower exactly, which never moved from the seed's init
                assert torch.equal(v, ddp_state[k]), k
            else:
                assert torch.allclose(v, ddp_state[k], atol=WEIGHT_ATOL), k
