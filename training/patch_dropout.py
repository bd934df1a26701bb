"""Patch dropout (FLIP, Li et al. 2023; OpenCLIP's PatchDropout): train the image tower on a random subset of patches.

A forward hook on the vision embeddings keeps the class token and a random `1 - prob` of the patch
tokens (after position embeddings, before the pre-norm, where OpenCLIP drops them) while the model is
in training mode; evaluation and the exported model see every patch.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def keep_patches(tokens: torch.Tensor, prob: float) -> torch.Tensor:
    """[B, 1 + N, D] -> [B, 1 + max(1, int(N * (1 - prob))), D]: the class token and a random subset of patches per
    image."""
    cls, patches = tokens[:, :1], tokens[:, 1:]
    keep = max(1, int(patches.shape[1] * (1 - prob)))
    idx = torch.randn(patches.shape[:2], device=tokens.device).topk(keep, dim=-1).indices
    return torch.cat([cls, patches.gather(1, idx.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))], dim=1)


def enable_patch_dropout(model: nn.Module, prob: float) -> torch.utils.hooks.RemovableHandle | None:
    """Drop `prob` of the patches in training mode (MetaClip2Model or its vision model); None when prob is 0."""
    if not prob:
        return None
    vision = getattr(model, "vision_model", model)

    def hook(module: nn.Module, _inputs, output: torch.Tensor) -> torch.Tensor:
        return keep_patches(output, prob) if module.training else output

    return vision.embeddings.register_forward_hook(hook)
