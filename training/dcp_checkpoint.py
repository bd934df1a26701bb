"""Sharded checkpoints (`--fsdp`) with torch.distributed.checkpoint: RUN/checkpoints/step_NNNNNNNN/.

Commit protocol. Every rank writes its own shard files (`__R_0.distcp`) into the step folder; DCP's
coordinator then writes `.metadata`; rank 0 writes `train_state.pt` (scheduler, scaler, RNG, step, the
global stream position) and, last, `COMMIT.json`. A step folder counts only once COMMIT.json exists:
`--resume latest` never sees a step whose writing was cut short, and the next save removes such
orphans. Loading reshards: a checkpoint written by N processes loads into any process count.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from curation.common import UserError, atomic_path, read_json, write_json_atomic
from training.distributed import barrier

COMMIT = "COMMIT.json"
TRAIN_STATE = "train_state.pt"
_NAME = re.compile(r"^step_(\d{8})$")


def step_folder(run: str | os.PathLike, step: int) -> Path:
    return Path(run) / "checkpoints" / f"step_{step:08d}"


def is_committed(folder: Path) -> bool:
    return (folder / COMMIT).is_file()


def step_folders(run: str | os.PathLike) -> list[Path]:
    """Every step folder, committed or not, oldest first."""
    root = Path(run) / "checkpoints"
    return sorted(p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)) if root.is_dir() else []


def committed(run: str | os.PathLike) -> list[Path]:
    """Committed step folders, oldest first."""
    return [p for p in step_folders(run) if is_committed(p)]


def save_sharded(run: str | os.PathLike, step: int, root: nn.Module, optimizer, train_state: dict, is_main: bool, keep: int = 3) -> Path:
    """Collective: all ranks write their shards of model + optimizer; rank 0 commits, then prunes. Returns the folder."""
    folder = step_folder(run, step)
    if is_main and folder.exists():
        shutil.rmtree(folder)  # an uncommitted orphan of a killed run, or the same step rewritten
    barrier()
    model_sd, optim_sd = get_state_dict(root, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=folder)
    if is_main:
        with atomic_path(folder / TRAIN_STATE) as tmp:
            torch.save(train_state, tmp)
        write_json_atomic(folder / COMMIT, {"step": step, "files": sorted(p.name for p in folder.iterdir())})
        done = committed(run)
        for old in [p for p in step_folders(run) if p != folder and (p not in done or p in done[:-keep])]:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return folder


def load_sharded(folder: Path, root: nn.Module, optimizer) -> dict:
    """Collective: load model + optimizer shards into this layout; return train_state."""
    if not is_committed(folder):
        raise UserError(f"{folder}: checkpoint has no {COMMIT} (its writing was cut short); pass a committed one or --resume latest")
    model_sd, optim_sd = get_state_dict(root, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    try:
        dcp.load(state, checkpoint_id=folder)
    except Exception as e:  # noqa: BLE001  (DCP wraps rank failures in CheckpointException)
        raise UserError(f"{folder}: cannot load this sharded checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                        "pass an older one with --resume PATH") from e
    set_state_dict(root, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return torch.load(folder / TRAIN_STATE, map_location="cpu", weights_only=False)


def commit_record(folder: Path) -> dict:
    return read_json(folder / COMMIT)
