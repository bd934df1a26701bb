"""Streamed safetensors export: the file safetensors reads back, and a from_pretrained folder from --fsdp."""
from __future__ import annotations

import pytest
import torch

from training.export_sharded import stream_safetensors


def test_streamed_file_reads_back_with_safetensors(tmp_path):
    from safetensors.torch import load_file

    tensors = {"a.weight": torch.randn(3, 5), "b": torch.arange(7, dtype=torch.int64),
               "c": torch.randn(2, 2).to(torch.bfloat16), "scalar": torch.tensor(2.5)}
    stream_safetensors(tensors, tmp_path / "m.safetensors")
    got = load_file(tmp_path / "m.safetensors")
    assert got.keys() == tensors.keys()
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


@pytest.mark.slow
def test_fsdp_export_loads_with_from_pretrained(shards, tokenizer_dir, tmp_path):
    from transformers import MetaClip2Model

    from launch import hf_weights, torchrun

    r = torchrun(2, "--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 1, "--batch-size", 4, "--workers", 0,
                 "--fsdp", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-3000:]
    model, info = MetaClip2Model.from_pretrained(tmp_path / "run" / "hf", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    state = model.state_dict()
    for k, v in hf_weights(tmp_path / "run").items():
        assert torch.equal(state[k], v), k
    assert model.logit_scale.ndim == 0 and set(state) >= set(hf_weights(tmp_path / "run"))
