"""Patch dropout: the encoder sees the class token and half the patches in training, every patch in eval."""
from __future__ import annotations

import pytest
import torch

from training.models import build_model
from training.patch_dropout import enable_patch_dropout, keep_patches


def encoder_lengths(model, pixels):
    seen = []
    handle = model.vision_model.encoder.register_forward_pre_hook(
        lambda m, a, kw: seen.append(kw["inputs_embeds"].shape[1]), with_kwargs=True)
    model.get_image_features(pixel_values=pixels)
    handle.remove()
    return seen


@pytest.mark.slow
def test_half_the_patches_reach_the_encoder_in_training_only():
    torch.manual_seed(0)
    model = build_model("tiny", 50)  # 32 px / 8 px patches: 16 patches + class token
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = model.eval().get_image_features(pixel_values=pixels).pooler_output
        assert enable_patch_dropout(model, 0.0) is None
        enable_patch_dropout(model, 0.5)
        assert encoder_lengths(model.train(), pixels) == [1 + 8]
        assert encoder_lengths(model.eval(), pixels) == [17]
        assert torch.equal(model.get_image_features(pixel_values=pixels).pooler_output, before)
        assert not torch.allclose(model.train().get_image_features(pixel_values=pixels).pooler_output, before)


def test_keep_patches_keeps_the_class_token_and_distinct_patches():
    tokens = torch.arange(2 * 11 * 1, dtype=torch.float32).reshape(2, 11, 1)
    out = keep_patches(tokens, 0.75)
    assert out.shape == (2, 1 + 2, 1)
    assert torch.equal(out[:, 0], tokens[:, 0])
    for b in range(2):
        kept = out[b, 1:, 0].tolist()
        assert len(set(kept)) == 2 and set(kept) <= set(tokens[b, 1:, 0].tolist())
