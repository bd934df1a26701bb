"""CLIP contrastive loss with OpenCLIP's ClipLoss semantics (gather-with-grad, local loss).

Each rank embeds its local batch. Features are all-gathered; with `gather_with_grad` the gather is
differentiable (gradients flow back to the rank that produced each feature), otherwise the local
slice is re-inserted so only local features carry gradient (OpenCLIP's default). With `local_loss`
each rank scores its local rows against all gathered columns (labels offset by rank x batch);
otherwise every rank computes the full global matrix. The loss is the mean of the image->text and
text->image cross-entropies. The logit scale is a log-temperature; the trainer clamps it at ln(100)
after each optimiser step (as OpenCLIP), never inside the loss, so its gradient is never cut.

`siglip_loss` is SigLIP's pairwise sigmoid loss (Zhai et al. 2023; OpenCLIP's SigLipLoss) with a learnt
bias, initialised as in the paper: scale ln(10), bias -10.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

MAX_LOGIT_SCALE = math.log(100.0)
SIGLIP_INIT_SCALE = math.log(10.0)
SIGLIP_INIT_BIAS = -10.0
LOSSES = ("clip", "siglip")


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


def gather(x: torch.Tensor, with_grad: bool) -> torch.Tensor:
    """All ranks' `x` concatenated in rank order; without `with_grad` only the local slice carries gradient."""
    if with_grad:
        return torch.cat(_GatherWithGrad.apply(x))
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts)


def gather_features(image: torch.Tensor, text: torch.Tensor,
                    gather_with_grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' features concatenated in rank order."""
    return gather(image, gather_with_grad), gather(text, gather_with_grad)


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
              local_loss: bool = False, gather_with_grad: bool = False) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised features; distributed when torch.distributed is initialised."""
    image = F.normalize(image, dim=-1)
    text = F.normalize(text, dim=-1)
    scale = logit_scale.exp()
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


def siglip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                logit_bias: torch.Tensor) -> torch.Tensor:
    """Sigmoid loss summed over all (local image, global text) pairs, divided by the local batch size.

    Matching pairs are positives, every other pair (other ranks' texts included) a negative. Texts are
    gathered with gradient: value and gradient equal OpenCLIP's SigLipLoss, which passes them between
    neighbouring ranks instead.
    """
    image = F.normalize(image, dim=-1)
    text = F.normalize(text, dim=-1)
    n = image.shape[0]
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    first = 0
    if world > 1:
        text = gather(text, with_grad=True)
        first = n * dist.get_rank()
    logits = (logit_scale.exp() * image @ text.T + logit_bias).float()
    labels = -torch.ones_like(logits)
    labels[torch.arange(n), torch.arange(n) + first] = 1.0
    return -F.logsigmoid(labels * logits).sum() / n


def init_loss_parameters(model: torch.nn.Module, loss: str) -> None:
    """SigLIP's learnt bias (a `logit_bias` parameter on the model) and both initial values; CLIP keeps the model's."""
    if loss == "siglip":
        with torch.no_grad():
            model.logit_scale.fill_(SIGLIP_INIT_SCALE)
        model.logit_bias = torch.nn.Parameter(torch.tensor(SIGLIP_INIT_BIAS, device=model.logit_scale.device))


def hf_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """The weights MetaClip2Model knows (None: all of them); SigLIP's bias goes to `config.logit_bias` instead."""
    if not hasattr(model, "logit_bias"):
        return None
    model.config.logit_bias = float(model.logit_bias.detach())
    return {k: v for k, v in model.state_dict().items() if k != "logit_bias"}
