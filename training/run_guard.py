"""The RUN folder of `train`: what it writes, refusing to mix two runs in it, `--overwrite`, and log truncation on resume.

A folder that already holds a run's outputs is refused unless the command continues it (`--resume`)
or starts it again (`--overwrite`, which removes only what `train` writes there, and never a folder
holding one of the command's inputs). Resuming drops the log rows after the resumed step, so steps
that are trained again are logged once.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.errors import UserError
from core.atomic import atomic_path

OUTPUTS = ("checkpoints", "metrics.jsonl", "samples", "plots", "hf", "config.json", "eval.json", "tensorboard", "wandb")


def existing_outputs(run: Path) -> list[str]:
    """Names of OUTPUTS present in `run`."""
    return [name for name in OUTPUTS if (run / name).exists()]


def check_fresh(run: Path) -> None:
    """UserError when `run` already holds a run's outputs."""
    found = existing_outputs(run)
    if found:
        raise UserError(f"--out {run} already holds a training run ({', '.join(found)}); continue it with --resume latest, "
                        "start it again with --overwrite, or choose another --out")


def remove_outputs(run: Path, inputs: list[str]) -> None:
    """Delete what `train` wrote in `run`; UserError (nothing removed) if an output holds one of `inputs`."""
    targets = [(run / name).resolve() for name in existing_outputs(run)]
    for given in inputs:
        path = Path(given.split("{")[0]).resolve()
        hit = next((t for t in targets if path == t or t in path.parents), None)
        if hit is not None:
            raise UserError(f"--overwrite would delete {hit}, which holds the input {given}; copy that input elsewhere or choose another --out")
    for t in targets:
        shutil.rmtree(t) if t.is_dir() else t.unlink(missing_ok=True)


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop rows logged after `step` (written by a run that stopped before its next checkpoint)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(r + "\n" for r in rows))


def last_planned_steps(run: Path) -> int | None:
    """total_steps of the previous run in `run` (its config.json), if any."""
    path = run / "config.json"
    return json.loads(path.read_text()).get("total_steps") if path.is_file() else None


MODEL_FLAGS = ("loss", "lock_image", "layer_decay", "image_size")


def changed_flags(run: Path, config: dict) -> dict:
    """The model/optimizer flags whose value in the run's config.json (the run a checkpoint continues) differs from `config`."""
    path = run / "config.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    return {k: old.get(k) for k in MODEL_FLAGS if k in old and old[k] != config.get(k)}


def mismatch_message(path: Path, error: Exception, flags: dict) -> str:
    """One line for a checkpoint whose model or optimizer state does not fit this run."""
    given = ": " + ", ".join(f"{k}={v}" for k, v in flags.items()) if flags else ""
    return f"{path} does not fit this run's model or optimizer ({str(error).splitlines()[0][:120]}); resume with the flags it was written with{given}"
