"""Parameter groups: weight decay on matrices only; layer-wise LR decay per tower."""
from __future__ import annotations

import pytest

from training.models import build_model
from training.optim import param_groups


def lr_by_name(model, groups):
    ids = {id(p): g["lr"] for g in groups for p in g["params"]}
    return {n: ids[id(p)] for n, p in model.named_parameters() if id(p) in ids}


def test_without_layer_decay_two_groups_at_the_base_lr():
    model = build_model("tiny", 50)
    groups = param_groups(model, 0.2, 1e-3)
    assert [(g["weight_decay"], g["lr"]) for g in groups] == [(0.2, 1e-3), (0.0, 1e-3)]
    no_decay = {id(p) for p in groups[1]["params"]}
    names = [n for n, p in model.named_parameters() if id(p) in no_decay]
    assert "logit_scale" in names and all(p.ndim < 2 or "norm" in n or n == "logit_scale"
                                          for n, p in model.named_parameters() if id(p) in no_decay)


def test_layer_decay_scales_each_tower_from_its_head_down():
    model = build_model("tiny", 50)  # 2 blocks per tower
    lr = lr_by_name(model, param_groups(model, 0.2, 1.0, layer_decay=0.5))
    for tower in ("vision", "text"):
        assert lr[f"{tower}_model.embeddings.position_embedding.weight"] == pytest.approx(0.5 ** 3)
        assert lr[f"{tower}_model.encoder.layers.0.mlp.fc1.weight"] == pytest.approx(0.5 ** 2)
        assert lr[f"{tower}_model.encoder.layers.1.self_attn.q_proj.bias"] == pytest.approx(0.5)
    assert lr["vision_model.pre_layrnorm.weight"] == pytest.approx(0.5 ** 3)
    assert lr["vision_model.post_layernorm.weight"] == lr["visual_projection.weight"] == 1.0
    assert lr["text_projection.weight"] == 1.0
    assert lr["text_model.final_layer_norm.bias"] == lr["logit_scale"] == 1.0


def test_frozen_parameters_are_left_out():
    from training.towers import lock_image_tower

    model = build_model("tiny", 50)
    lock_image_tower(model)
    names = lr_by_name(model, param_groups(model, 0.2, 1e-3, layer_decay=0.8))
    assert names and not any(n.startswith(("vision_model.", "visual_projection.")) for n in names)
