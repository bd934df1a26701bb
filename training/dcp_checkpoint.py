"""Sharded checkpoints (`--fsdp`) with torch.distributed.checkpoint: RUN/checkpoints/step_NNNNNNNN/.

Commit protocol. Every rank writes its own shard files (`__R_0.distcp`) into the step folder; DCP's
coordinator then writes `.metadata`; rank 0 writes `train_state.pt` (scheduler, scaler, RNG, step, the
global stream position) and, last, `COMMIT.json`. A step folder counts only once COMMIT.json exists:
`--resume latest` never sees a step whose writing was cut short, and the next save removes such
orphans. On an object store (s3://, gs://) the same holds: every object is written once, whole (DCP's
fsspec writer), and COMMIT.json is the last object. Loading reshards: a checkpoint written by N
processes loads into any process count.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader, FsspecWriter
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from core import storage
from core.errors import UserError
from training.distributed import barrier

COMMIT = "COMMIT.json"
TRAIN_STATE = "train_state.pt"
_NAME = re.compile(r"^step_(\d{8})$")


def step_folder(run: str | os.PathLike, step: int) -> str:
    return storage.join(run, "checkpoints", f"step_{step:08d}")


def is_committed(folder: str | os.PathLike) -> bool:
    return storage.isfile(storage.join(folder, COMMIT))


def step_folders(run: str | os.PathLike) -> list[str]:
    """Every step folder, committed or not, oldest first."""
    root = storage.join(run, "checkpoints")
    if storage.is_local(run):
        p = storage.local_path(root)
        return sorted(str(d) for d in p.iterdir() if d.is_dir() and _NAME.match(d.name)) if p.is_dir() else []
    names = {f[len(root) + 1:].split("/", 1)[0] for f in storage.list_files(root) if f[len(root) + 1:].count("/")}
    return [storage.join(root, n) for n in sorted(names) if _NAME.match(n)]


def committed(run: str | os.PathLike) -> list:
    """Committed step folders, oldest first (Paths locally, URLs on an object store)."""
    found = [f for f in step_folders(run) if is_committed(f)]
    return [Path(f) for f in found] if storage.is_local(run) else found


def _target(folder: str, kind) -> dict:
    """dcp.save/load keyword arguments: a local folder by `checkpoint_id`; a URL by an fsspec writer/reader built
    with the storage options (--storage-options included), and no `checkpoint_id`: DCP would `reset` the writer
    with it, re-opening the URL without those options."""
    if storage.is_local(folder):
        return {"checkpoint_id": folder}
    io_kind = "storage_writer" if kind is FsspecWriter else "storage_reader"
    return {io_kind: kind(folder, **storage.fsspec_options(folder))}


def save_sharded(run: str | os.PathLike, step: int, root: nn.Module, optimizer, train_state: dict, is_main: bool,
                 keep: int = 3):
    """Collective: all ranks write their shards of model + optimizer; rank 0 commits, then prunes.
    Returns the folder."""
    folder = step_folder(run, step)
    if is_main:
        storage.remove(folder)  # an uncommitted orphan of a killed run, or the same step rewritten
    barrier()
    model_sd, optim_sd = get_state_dict(root, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, **_target(folder, FsspecWriter))
    if is_main:
        buf = io.BytesIO()
        torch.save(train_state, buf)
        storage.write_bytes(storage.join(folder, TRAIN_STATE), buf.getvalue())
        storage.write_json(storage.join(folder, COMMIT), {"step": step})
        done = [os.fspath(p) for p in committed(run)]
        for old in [p for p in step_folders(run) if p != folder and (p not in done or p in done[:-keep])]:
            storage.remove(old)
    barrier()
    return Path(folder) if storage.is_local(folder) else folder


def load_sharded(folder: str | os.PathLike, root: nn.Module, optimizer) -> dict:
    """Collective: load model + optimizer shards into this layout; return train_state."""
    folder = os.fspath(folder)
    if not is_committed(folder):
        raise UserError(f"{folder}: checkpoint has no {COMMIT} (its writing was cut short); "
                        "pass a committed one or --resume latest")
    model_sd, optim_sd = get_state_dict(root, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    try:
        dcp.load(state, **_target(folder, FsspecReader))
    except Exception as e:  # noqa: BLE001  (DCP wraps rank failures in CheckpointException)
        raise UserError(f"{folder}: cannot load this sharded checkpoint "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                        "pass an older one with --resume PATH") from e
    set_state_dict(root, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return read_train_state(folder)


def read_train_state(folder: str | os.PathLike) -> dict:
    with storage.open_input(storage.join(folder, TRAIN_STATE)) as f:
        return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=False)
