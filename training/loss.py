"""CLIP contrastive loss with OpenCLIP's ClipLoss semantics (gather-with-grad, local loss).

Each rank embeds its local batch. Features are all-gathered; with `gather_with_grad` the gather is
differentiable (gradients flow back to the rank that produced each feature), otherwise the local
slice is re-inserted so only local features carry gradient (OpenCLIP's default). With `local_loss`
each rank scores its local rows against all gathered columns (labels offset by rank x batch);
otherwise every rank computes the full global matrix. The loss is the mean of the image->text and
text->image cross-entropies. The logit scale is a log-temperature clamped at ln(100).
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

MAX_LOGIT_SCALE = math.log(100.0)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums gradients over ranks and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        g = torch.stack(grads)
        dist.all_reduce(g)
        return g[dist.get_rank()]


def gather_features(image: torch.Tensor, text: torch.Tensor, gather_with_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' features concatenated in rank order."""
    if gather_with_grad:
        return torch.cat(_GatherWithGrad.apply(image)), torch.cat(_GatherWithGrad.apply(text))
    rank, world = dist.get_rank(), dist.get_world_size()
    out = []
    for x in (image, text):
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.detach().contiguous())
        parts[rank] = x
        out.append(torch.cat(parts))
    return out[0], out[1]


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
              local_loss: bool = False, gather_with_grad: bool = False) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised features; distributed when torch.distributed is initialised."""
    image = F.normalize(image, dim=-1)
    text = F.normalize(text, dim=-1)
    scale = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    n = image.shape[0]
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if world == 1:
        logits_i = scale * image @ text.T
        logits_t = logits_i.T
        labels = torch.arange(n, device=image.device)
    else:
        all_image, all_text = gather_features(image, text, gather_with_grad)
        if local_loss:
            logits_i = scale * image @ all_text.T
            logits_t = scale * text @ all_image.T
            labels = torch.arange(n, device=image.device) + n * dist.get_rank()
        else:
            logits_i = scale * all_image @ all_text.T
            logits_t = logits_i.T
            labels = torch.arange(all_image.shape[0], device=image.device)
    return (F.cross_entropy(logits_i.float(), labels) + F.cross_entropy(logits_t.float(), labels)) / 2
