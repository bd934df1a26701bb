"""Saving and restoring a Trainer: one file per step under DDP, sharded folders under `--fsdp`, elastic checks.

The data position saved is global (training.stream.StreamState), so a run may resume with another process
count or `--workers`. What would make the continuation differ from the straight run is refused in one
line naming the flag to pass: another global batch, a process count that does not divide the lanes,
another `--lanes`, `--model` or `--fsdp` setting.
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from core.errors import UserError
from training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from training.distributed import all_gather_object, barrier
from training.stream import StreamState, layout_problem

# Flags whose per-rank random draws depend on the process layout: with them on, the process count is fixed.
LAYOUT_RANDOM_FLAGS = ("patch_dropout",)


def train_state(tr, rngs: list, stream: StreamState) -> dict:
    """Everything but model and optimizer (kept whole in .pt files, sharded in folders)."""
    return {"scheduler": tr.scheduler.state_dict(), "scaler": tr.scaler.state_dict(), "rng": rngs, "step": tr.step,
            "loader": stream.to_dict(), "world_size": tr.d.world_size, "model_name": tr.cfg.model, "fsdp": tr.cfg.fsdp,
            "config": asdict(tr.cfg)}


def save(tr):
    """Collective: checkpoint the trainer at its step; returns the checkpoint path."""
    from training.dcp_checkpoint import save_sharded

    stream = StreamState.combine(all_gather_object(tr.stream.to_dict()))
    state = train_state(tr, all_gather_object(rng_state()), stream)
    if tr.cfg.fsdp:
        return save_sharded(tr.rundir.root, tr.step, tr.forward, tr.optimizer, state, tr.d.is_main)
    path = None
    if tr.d.is_main:
        path = save_checkpoint(tr.rundir.root, tr.step,
                               {**state, "model": tr.model.state_dict(), "optimizer": tr.optimizer.state_dict()})
    barrier()
    return path


def check_compatible(ck: dict, tr, path: Path) -> None:
    """UserError unless this run continues `ck`'s stream and model exactly."""
    cfg, world = tr.cfg, tr.d.world_size
    if ck["model_name"] != cfg.model:
        raise UserError(f"{path} holds a {ck['model_name']} model; resume with --model {ck['model_name']}")
    if bool(ck.get("fsdp")) != cfg.fsdp:
        raise UserError(f"{path} was written {'with' if ck.get('fsdp') else 'without'} --fsdp; "
                        f"resume {'with' if ck.get('fsdp') else 'without'} it")
    stream = ck["loader"]
    if "lanes" not in stream:
        raise UserError(f"{path} predates the global stream position; "
                        "resume it with the worldclip version that wrote it")
    if cfg.lanes is not None and cfg.lanes != stream["lanes"]:
        raise UserError(f"--lanes {cfg.lanes}: {path} continues a stream of {stream['lanes']} lanes; "
                        f"drop --lanes or pass --lanes {stream['lanes']}")
    if tr.global_batch != stream["global_batch"]:
        old = ck["config"]
        product = (stream["global_batch"] // world if stream["global_batch"] % world == 0
                   else "impossible: use another process count")
        raise UserError(f"{path}: global batch was {stream['global_batch']} ({old['batch_size']} x {ck['world_size']} "
                        f"processes x accum {old['accum_freq']}), now {tr.global_batch}; with {world} processes pass "
                        f"--batch-size and --accum-freq whose product is {product}")
    problem = layout_problem(stream["lanes"], stream["global_batch"], world)
    if problem:
        raise UserError(f"{path}: {problem}")
    if ck["world_size"] != world and not cfg.gather_with_grad and tr.d.is_main:
        print(f"train: resuming on {world} processes (the checkpoint ran on {ck['world_size']}) without "
              "--gather-with-grad: gradients scale with 1/processes (OpenCLIP's semantics); AdamW's steps agree up to "
              "its eps", file=sys.stderr)
    random_flags = [f for f in LAYOUT_RANDOM_FLAGS if getattr(cfg, f, None)]
    if random_flags and ck["world_size"] != world:
        flag = "--" + random_flags[0].replace("_", "-")
        raise UserError(f"{path} was written by {ck['world_size']} processes and {flag} draws per process; "
                        f"resume with {ck['world_size']} processes")


def restore(tr, path) -> None:
    """Load `path` (a .pt file or a sharded folder, local or URL) into the trainer (collective under --fsdp)."""
    from core import storage
    from training.dcp_checkpoint import COMMIT, is_committed, load_sharded, read_train_state

    if storage.isdir(path):
        if not is_committed(path):
            raise UserError(f"{path}: sharded checkpoint has no {COMMIT} (its writing was cut short); "
                            "pass a committed one or --resume latest")
        ck = read_train_state(path)
        check_compatible(ck, tr, path)
        load_sharded(path, tr.forward, tr.optimizer)
    else:
        ck = load_checkpoint(path)
        check_compatible(ck, tr, path)
        tr.model.load_state_dict(ck["model"])
        tr.optimizer.load_state_dict(ck["optimizer"])
    tr.scheduler.load_state_dict(ck["scheduler"])
    tr.scaler.load_state_dict(ck["scaler"])
    set_rng_state(ck["rng"][tr.d.rank % len(ck["rng"])])
    tr.step = ck["step"]
    tr.stream = StreamState.from_dict(ck["loader"]).for_rank(tr.d.rank)
