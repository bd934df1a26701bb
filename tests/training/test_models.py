"""Model presets: MetaCLIP 2 worldwide shapes, vocab/ids from the tokenizer, bad flags."""
from __future__ import annotations

import pytest
import torch

from curation.common import UserError
from training.models import PRESETS, build_config, build_model


def test_presets_match_metaclip2_worldwide_configs():
    h = build_config("H-14", 901629)
    assert (h.projection_dim, h.vision_config.hidden_size, h.vision_config.num_hidden_layers) == (1024, 1280, 32)
    assert (h.vision_config.num_attention_heads, h.vision_config.patch_size, h.vision_config.intermediate_size) == (16, 14, 5120)
    assert (h.text_config.hidden_size, h.text_config.num_hidden_layers, h.text_config.num_attention_heads) == (1024, 24, 16)
    g = build_config("bigG-14", 901629)
    assert (g.vision_config.hidden_size, g.vision_config.intermediate_size, g.vision_config.num_attention_heads) == (1664, 8192, 16)
    assert (g.text_config.hidden_size, g.text_config.num_attention_heads, g.text_config.num_hidden_layers) == (1280, 20, 32)
    b = build_config("B-32", 901629)
    assert (b.vision_config.patch_size, b.vision_config.hidden_size, b.text_config.hidden_size, b.projection_dim) == (32, 768, 512, 512)
    for name in PRESETS:
        c = build_config(name, 901629)
        assert c.text_config.max_position_embeddings == 77
        assert c.text_config.hidden_act == c.vision_config.hidden_act == "quick_gelu"
        assert c.text_config.vocab_size == 901629


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
