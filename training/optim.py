"""AdamW parameter groups: weight decay on matrices only (OpenCLIP), optional layer-wise LR decay (BEiT, EVA-CLIP).

With `layer_decay` d each tower is numbered on its own: embeddings (and the vision pre-norm) are layer 0,
transformer block i is layer i + 1, and what follows the last block (final norm, projection) as well as
the logit scale and bias are layer L + 1. A parameter at layer l of a tower with L blocks gets
lr x d ** (L + 1 - l): the head trains at the full rate, each block below at d times the one above.
"""
from __future__ import annotations

import re

import torch.nn as nn

from training.towers import tower_of

_BLOCK = re.compile(r"\.encoder\.layers\.(\d+)\.")


def layer_id(name: str, depth: dict[str, int]) -> tuple[str, int]:
    """(tower, layer) of a parameter as defined in the module docstring."""
    tower = tower_of(name)
    if tower == "head":
        return tower, 0
    m = _BLOCK.search(name)
    if m:
        return tower, int(m.group(1)) + 1
    if ".embeddings." in name or ".pre_layrnorm." in name:
        return tower, 0
    return tower, depth[tower] + 1


def lr_scale(name: str, depth: dict[str, int], layer_decay: float | None) -> float:
    """Learning-rate multiplier of a parameter (1.0 without layer decay and for the loss head)."""
    tower, layer = layer_id(name, depth)
    if not layer_decay or tower == "head":
        return 1.0
    return layer_decay ** (depth[tower] + 1 - layer)


def param_groups(model: nn.Module, wd: float, lr: float, layer_decay: float | None = None) -> list[dict]:
    """Groups of trainable parameters by (weight decay, lr scale); each group's `lr` is lr x its scale."""
    depth = {"vision": model.config.vision_config.num_hidden_layers, "text": model.config.text_config.num_hidden_layers}
    groups: dict[tuple[bool, float], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim < 2 or "logit_scale" in name or "norm" in name)
        scale = lr_scale(name, depth, layer_decay)
        g = groups.setdefault((decay, scale), {"params": [], "weight_decay": wd if decay else 0.0, "lr": lr * scale,
                                               "lr_scale": scale})
        g["params"].append(p)
    return [g for _, g in sorted(groups.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))]
