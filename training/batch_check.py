"""Warn when one optimiser step asks for more samples than one pass over the shards holds."""
from __future__ import annotations

from core.errors import UserError
from training.data import Source, count_samples


def pass_size(sources: list[Source], global_batch: int, epoch_size: float | None) -> float | None:
    """Samples in one pass: the known epoch size, else counted from tar headers when there are fewer shards than
    the global batch (otherwise the data is taken to be large enough: a shard holds at least one sample), counted no
    further than the global batch (enough to decide the warning); None when unknown or a shard cannot be read to the
    end."""
    if epoch_size is not None:
        return epoch_size
    urls = [u for s in sources for u in s.urls]
    if len(urls) >= global_batch:
        return None
    try:
        return float(count_samples(urls, at_most=global_batch))  # no warning at `global_batch` or more
    except UserError:  # a damaged shard: training reports it as corrupt samples
        return None


def batch_warning(global_batch: int, batch_size: int, world_size: int, accum_freq: int,
                  size: float | None) -> str | None:
    """The warning when the global batch exceeds one pass of `size` samples, else None."""
    if size is None or global_batch <= size:
        return None
    most = max(int(size) // (world_size * accum_freq), 1)
    return (f"train: warning: each step takes {global_batch} samples (--batch-size {batch_size} x {world_size} "
            f"processes x --accum-freq {accum_freq}) but one pass over the shards holds {size:.0f}: every batch "
            f"repeats samples (about {global_batch / max(size, 1):.0f} copies each); "
            f"use a --batch-size of at most {most}")
