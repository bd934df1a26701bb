"""Models: parameter counts, vocab/ids from the tokenizer, bad flags (preset shapes: test_presets.py)."""
from __future__ import annotations

import pytest
import torch

from core.errors import UserError
from training.models import build_config, build_model


def test_parameter_counts_split_by_tower():
    from training.models import parameter_counts

    model = build_model("tiny", 100)
    c = parameter_counts(model)
    assert c["total"] == sum(p.numel() for p in model.parameters()) == c["vision"] + c["text"] + 1  # + logit scale
    assert c["text"] > 100 * 64  # token embeddings


def test_tiny_model_takes_tokenizer_ids_and_runs(tokenizer_dir):
    from training.tokenizer import load_tokenizer, special_ids, tokenize

    tok = load_tokenizer(tokenizer_dir)
    model = build_model("tiny", len(tok), **special_ids(tok))
    assert model.config.text_config.eos_token_id == tok.eos_token_id == 2
    ids, mask = tokenize(tok, ["a red square", "一个红色的方块"])
    out = model(input_ids=ids, attention_mask=mask, pixel_values=torch.zeros(2, 3, 32, 32))
    assert out.logits_per_image.shape == (2, 2)


def test_bad_preset_and_image_size_are_user_errors():
    with pytest.raises(UserError, match="not a preset"):
        build_config("ViT-X", 100)
    with pytest.raises(UserError, match="multiple of"):
        build_config("B-32", 100, image_size=100)
    assert build_config("B-32", 100, image_size=256).vision_config.image_size == 256
