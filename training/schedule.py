"""Learning-rate schedule: linear warmup then cosine to 0 at the planned total, and what a changed total means.

The schedule is a function of (step, warmup, total). Resuming with another total (a larger --steps or
--epochs to extend a finished run) recomputes it as if the run had been planned with the new total from
the start: later steps follow the new cosine, and the learning rate at the resumed step is the new
schedule's value there (not the old schedule's last, which is 0 at the end of a finished run).
"""
from __future__ import annotations

import math

import torch


def lr_lambda(warmup: int, total: int):
    """Linear warmup to 1, then cosine to 0 at `total`."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        span = max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))
    return f


def apply_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, step: int) -> None:
    """Set every group's lr to the (possibly new) schedule's value at `step`, after loading a checkpoint."""
    for group, base, fn in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * fn(step)
    scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]


def change_warning(planned: int, total: int, step: int, warmup: int, lr: float) -> str:
    """The warning for a resume whose total differs from the planned one."""
    was, now = lr * lr_lambda(warmup, planned)(step), lr * lr_lambda(warmup, total)(step)
    return (f"train: warning: resuming at step {step} with {total} total steps, but the run was planned for {planned}: "
            f"the warmup + cosine schedule is recomputed for {total} steps, so the learning rate at step {step + 1} "
            f"is {now:.3g} (the old schedule's {was:.3g}); see docs/cli.md, 'Extending a finished run'")
