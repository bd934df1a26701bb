"""Presets equal MetaCLIP 2's released ViT-*-worldwide*.json configs (facebookresearch/MetaCLIP,
mini_clip/model_configs)."""
from __future__ import annotations

import pytest

from training.models import build_config
from training.presets import PRESETS

# Copied from the configs: embed_dim, image_size, patch_size, vision layers, width, head_width, mlp_ratio,
# text width, heads, layers, quick_gelu (absent = false). Vocabulary 901,629 (XLM-V), context 77 in all.
RELEASED = {
    "S-16": (384, 224, 16, 12, 384, 64, 4.0, 384, 6, 12, False),
    "S-16-384": (384, 384, 16, 12, 384, 64, 4.0, 384, 6, 12, False),
    "M-16": (512, 224, 16, 12, 512, 64, 4.0, 512, 8, 12, False),
    "M-16-384": (512, 384, 16, 12, 512, 64, 4.0, 512, 8, 12, False),
    "B-32": (512, 224, 32, 12, 768, 64, 4.0, 512, 8, 12, False),
    "B-32-384": (512, 384, 32, 12, 768, 64, 4.0, 512, 8, 12, False),
    "B-16": (512, 224, 16, 12, 768, 64, 4.0, 512, 8, 12, False),
    "B-16-384": (512, 384, 16, 12, 768, 64, 4.0, 512, 8, 12, False),
    "L-14": (768, 224, 14, 24, 1024, 64, 4.0, 768, 12, 12, False),
    "L-14-378": (768, 378, 14, 24, 1024, 64, 4.0, 768, 12, 12, False),
    "H-14": (1024, 224, 14, 32, 1280, 80, 4.0, 1024, 16, 24, False),
    "H-14-quickgelu": (1024, 224, 14, 32, 1280, 80, 4.0, 1024, 16, 24, True),
    "H-14-378": (1024, 378, 14, 32, 1280, 80, 4.0, 1024, 16, 24, False),
    "bigG-14": (1280, 224, 14, 48, 1664, 104, 4.9231, 1280, 20, 32, False),
    "bigG-14-378": (1280, 378, 14, 48, 1664, 104, 4.9231, 1280, 20, 32, False),
    "bigG-14-392": (1280, 392, 14, 48, 1664, 104, 4.9231, 1280, 20, 32, False),
}


def test_every_released_config_is_a_preset():
    assert set(RELEASED) == set(PRESETS) - {"tiny"}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_preset_equals_released_config(name):
    embed, image, patch, layers, width, head_width, mlp_ratio, t_width, t_heads, t_layers, quick = RELEASED[name]
    c = build_config(name, 901629)
    v, t = c.vision_config, c.text_config
    assert (c.projection_dim, v.projection_dim, t.projection_dim) == (embed,) * 3
    assert (v.image_size, v.patch_size, v.num_hidden_layers, v.hidden_size) == (image, patch, layers, width)
    assert v.num_attention_heads == width // head_width and v.intermediate_size == int(width * mlp_ratio)
    assert (t.hidden_size, t.num_attention_heads, t.num_hidden_layers, t.intermediate_size) == \
        (t_width, t_heads, t_layers, 4 * t_width)
    assert (t.vocab_size, t.max_position_embeddings) == (901629, 77)
    assert v.hidden_act == t.hidden_act == ("quick_gelu" if quick else "gelu")


def test_derived_dims_of_the_largest_towers():
    g, h = build_config("bigG-14", 901629), build_config("H-14", 901629)
    assert (g.vision_config.num_attention_heads, g.vision_config.intermediate_size) == (16, 8192)
    assert (h.vision_config.num_attention_heads, h.vision_config.intermediate_size) == (16, 5120)
