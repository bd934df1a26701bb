"""The RUN folder of `train`: what it writes, refusing to mix two runs in it, `--overwrite`, and log truncation
on resume.

A folder that already holds a run's outputs is refused unless the command continues it (`--resume`)
or starts it again (`--overwrite`, which removes only what `train` writes there, and never a folder
holding one of the command's inputs). The same holds for a RUN in an object store (s3://, gs://).
Resuming drops the log rows after the resumed step, so steps that are trained again are logged once.
"""
from __future__ import annotations

import json
from pathlib import Path

from core import storage
from core.atomic import atomic_path
from core.errors import UserError

OUTPUTS = ("checkpoints", "metrics.jsonl", "samples", "plots", "hf", "config.json", "eval.json", "tensorboard", "wandb")


def existing_outputs(run: str | Path) -> list[str]:
    """Names of OUTPUTS present in `run` (a local folder, or a URL: one listing of its objects)."""
    if storage.is_local(run):
        root = storage.local_path(run)
        return [name for name in OUTPUTS if (root / name).exists()]
    base = storage.normalize(run)
    with storage.errors(run, "--out"):
        present = {storage.normalize(u)[len(base) + 1:].split("/", 1)[0] for u in storage.list_files(run)}
    return [name for name in OUTPUTS if name in present]


def check_fresh(run: str | Path) -> None:
    """UserError when `run` already holds a run's outputs."""
    found = existing_outputs(run)
    if found:
        raise UserError(f"--out {run} already holds a training run ({', '.join(found)}); "
                        "continue it with --resume latest, start it again with --overwrite, or choose another --out")


def _holds(target: str, given: str) -> bool:
    """Whether the output `target` (normalized path or URL) is the input `given` or a folder above it."""
    spec = given.split("{")[0].split("*")[0]
    if storage.is_local(target) != storage.is_local(spec):
        return False
    path = storage.normalize(spec)
    return path == target or path.startswith(target.rstrip("/") + "/")


def remove_outputs(run: str | Path, inputs: list[str]) -> None:
    """Delete what `train` wrote in `run` (local or URL); UserError (nothing removed) if an output holds an input."""
    targets = [storage.normalize(storage.join(run, name)) for name in existing_outputs(run)]
    for given in inputs:
        hit = next((t for t in targets if _holds(t, given)), None)
        if hit is not None:
            raise UserError(f"--overwrite would delete {hit}, which holds the input {given}; "
                            "copy that input elsewhere or choose another --out")
    for t in targets:
        storage.remove(t)


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop rows logged after `step` (written by a run that stopped before its next checkpoint)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(r + "\n" for r in rows))


def _config(run: str | Path) -> dict:
    """The run's config.json (local folder or URL), {} without one."""
    path = storage.join(run, "config.json")
    return storage.read_json(path) if storage.isfile(path) else {}


def last_planned_steps(run: str | Path) -> int | None:
    """total_steps of the previous run in `run` (its config.json), if any."""
    return _config(run).get("total_steps")


MODEL_FLAGS = ("loss", "lock_image", "layer_decay", "image_size")


def changed_flags(run: str | Path, config: dict) -> dict:
    """The model/optimizer flags whose value in the run's config.json (the run a checkpoint continues)
    differs from `config`."""
    old = _config(run)
    return {k: old.get(k) for k in MODEL_FLAGS if k in old and old[k] != config.get(k)}


def mismatch_message(path: Path, error: Exception, flags: dict) -> str:
    """One line for a checkpoint whose model or optimizer state does not fit this run."""
    given = ": " + ", ".join(f"{k}={v}" for k, v in flags.items()) if flags else ""
    return (f"{path} does not fit this run's model or optimizer ({str(error).splitlines()[0][:120]}); "
            f"resume with the flags it was written with{given}")
