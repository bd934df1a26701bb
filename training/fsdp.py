"""`--fsdp`: FSDP2 (`fully_shard`) per transformer block, per tower, and at the root, plus memory estimates.

Parameters stay fp32 (master weights) and are sharded over the ranks; with `--precision bf16` they are
all-gathered in bf16 for compute and gradients are reduce-scattered in fp32. The root is the
`ClipForward` wrapper (its forward runs both towers), so the projections belong to the root unit and
every sharded unit is entered through a `forward` call. fully_shard cannot shard scalars: the logit
scale stays a plain replicated parameter whose gradient `average_replicated_grads` all-reduces.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

# fp32 weights (4) + fp32 gradients (4) + AdamW exp_avg and exp_avg_sq (8)
BYTES_PER_PARAM = 16


def mixed_precision(precision: str, root: bool = False) -> MixedPrecisionPolicy:
    """bf16 compute with fp32 reduction for bf16 (the root also returns fp32 features); plain fp32 otherwise."""
    if precision == "bf16":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32,
                                    output_dtype=torch.float32 if root else None)
    return MixedPrecisionPolicy()


def blocks(model: nn.Module) -> list[nn.Module]:
    """Every transformer block of both towers (children of each `encoder.layers`)."""
    return [layer for name, m in model.named_modules() if name.endswith("encoder.layers") for layer in m]


def scalars(model: nn.Module) -> set[nn.Parameter]:
    """Parameters fully_shard cannot shard (0-d: the logit scale, a SigLIP bias)."""
    return {p for p in model.parameters() if p.ndim == 0}


def shard(root: nn.Module, model: nn.Module, precision: str) -> nn.Module:
    """fully_shard each block, each tower (`text_model`, `vision_model`), then `root`; returns `root`."""
    policy = mixed_precision(precision)
    for block in blocks(model):
        fully_shard(block, mp_policy=policy)
    for tower in (model.text_model, model.vision_model):
        fully_shard(tower, mp_policy=policy)
    fully_shard(root, mp_policy=mixed_precision(precision, root=True), ignored_params=scalars(model))
    return root


def average_replicated_grads(model: nn.Module) -> None:
    """Mean over ranks of the gradients fully_shard left alone (the scalars), as DDP would."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    for p in model.parameters():
        if p.ndim == 0 and p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


def ensure_process_group(device: torch.device) -> None:
    """A one-process group when none was started (fully_shard and DCP need one; torchrun starts it otherwise)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=dist.HashStore(), rank=0,
                                world_size=1)


def set_gradient_sync(module: nn.Module, sync: bool) -> None:
    """Skip (False) or do (True) the gradient reduce-scatter in the next backward (grad accumulation)."""
    if isinstance(module, FSDPModule):
        module.set_requires_gradient_sync(sync)


def full_value(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor behind a DTensor shard (a collective: every rank calls it), else `t`."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def parameter_count(model: nn.Module) -> int:
    """Parameters of the unsharded model (global shapes, also for DTensors)."""
    return sum(p.numel() for p in model.parameters())


def per_rank_bytes(n_params: int, world: int, fsdp: bool) -> int:
    """Weights + gradients + AdamW state held by one rank: all of it under DDP, 1/world under FSDP."""
    return BYTES_PER_PARAM * (-(-n_params // world) if fsdp else n_params)


def memory_line(n_params: int, world: int) -> str:
    """One line for the start of a run: parameters and the per-rank estimate under DDP and FSDP."""
    gib = 2 ** 30
    return (f"train: {n_params / 1e6:,.2f}M parameters; per-rank fp32 weights + grads + AdamW state: "
            f"DDP {per_rank_bytes(n_params, world, False) / gib:.3f} GiB, "
            f"FSDP over {world} rank{'s' if world > 1 else ''} {per_rank_bytes(n_params, world, True) / gib:.3f} GiB "
            "(activations extra)")
