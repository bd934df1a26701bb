"""Atomic training checkpoints: RUN/checkpoints/step_NNNNNNNN.pt, `--resume latest|PATH`.

Runs with `--fsdp` write sharded folders instead (training.dcp_checkpoint); `--resume latest` takes the
newest finished file or committed folder. A checkpoint holds model, optimizer, scheduler and grad-scaler state,
python/numpy/torch(/cuda) RNG states, step, and each rank's data-loader state (batches consumed, every worker's
stream position), so a resumed run continues the exact sample stream. Files are written to a temp name and renamed.
"""
from __future__ import annotations

import io
import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from core import storage
from core.atomic import atomic_path
from core.errors import UserError

_NAME = re.compile(r"^step_(\d{8})\.pt$")


def checkpoint_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "checkpoints"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run: str | os.PathLike, step: int, state: dict, keep: int = 3) -> Path | str:
    """Write step_<step>.pt atomically (on an object store: one whole object); prune all but the newest `keep`."""
    if not storage.is_local(run):
        url = storage.join(run, "checkpoints", f"step_{step:08d}.pt")
        buf = io.BytesIO()
        torch.save(state, buf)
        storage.write_bytes(url, buf.getvalue())
        for old in list_checkpoints(run)[:-keep]:
            storage.remove(old)
        return url
    folder = checkpoint_dir(run)
    path = folder / f"step_{step:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for stale in folder.glob(".step_*.tmp"):  # temp files of a run killed while saving
        stale.unlink(missing_ok=True)
    for old in list_checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run: str | os.PathLike) -> list:
    """Finished checkpoints, oldest first (Paths locally, URLs on an object store)."""
    if not storage.is_local(run):
        found = storage.list_files(storage.join(run, "checkpoints"))
        return sorted((u for u in found if _NAME.match(storage.name(u))), key=storage.name)
    folder = checkpoint_dir(run)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def step_of(path: Path | str) -> int:
    """The step in a checkpoint's name (step_NNNNNNNN.pt file or sharded step_NNNNNNNN folder)."""
    return int(storage.name(path).split("_")[1].split(".")[0])


def resolve_resume(run: str | os.PathLike, resume: str | None) -> Path | None:
    """Checkpoint for --resume: 'latest' (newest finished file or committed sharded folder; None if the run
    has none yet) or an explicit file or folder."""
    from training.dcp_checkpoint import committed

    if not resume:
        return None
    if resume == "latest":
        found = sorted(list_checkpoints(run) + committed(run), key=step_of)
        return found[-1] if found else None
    if not storage.exists(resume):
        raise UserError(f"--resume {resume}: checkpoint not found; "
                        f"use --resume latest or a path under {storage.join(run, 'checkpoints')}")
    return Path(resume) if storage.is_local(resume) else storage.normalize(resume)


def load_checkpoint(path: Path | str) -> dict:
    try:
        if not storage.is_local(path):
            with storage.open_input(path) as f:
                return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=False)
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001  (truncated/corrupt files raise several types)
        raise UserError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); "
                        "pass an older one with --resume PATH") from e
