"""Metric sinks besides RUN/metrics.jsonl: `--log tensorboard` (RUN/tensorboard) and `--log wandb` (offline, RUN/wandb).

Both are optional installs. A resumed run continues the same logs: TensorBoard drops the events after
the resumed step (purge_step); W&B resumes the run whose id RUN/wandb/run_id keeps (a fresh run gets a new
one). W&B runs offline unless WANDB_MODE says otherwise; upload later with
`wandb sync RUN/wandb/offline-run-*`.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from core.errors import UserError

SINKS = ("tensorboard", "wandb")


class TensorBoard:
    """Scalars as train/<key> at each step."""

    def __init__(self, run_dir: Path, config: dict, resumed_step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise UserError("--log tensorboard needs the tensorboard package: pip install tensorboard") from e
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resumed_step + 1)

    def log(self, row: dict) -> None:
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"train/{key}", value, row["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandB:
    """One W&B run per RUN folder, offline by default."""

    def __init__(self, run_dir: Path, config: dict, resumed_step: int):
        try:
            import wandb
        except ImportError as e:
            raise UserError("--log wandb needs the wandb package: pip install wandb") from e
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(project="worldclip", name=run_dir.name, id=_run_id(run_dir / "wandb", resumed_step),
                              resume="allow", dir=str(run_dir), config=config)

    def log(self, row: dict) -> None:
        self.run.log({f"train/{k}": v for k, v in row.items() if k != "step"}, step=row["step"])

    def close(self) -> None:
        """Finish the run and stop W&B's service process, which writes the run file out."""
        import wandb

        self.run.finish()
        wandb.teardown()


def _run_id(folder: Path, resumed_step: int) -> str:
    """The W&B run id kept in `folder`: reused when resuming, new for a fresh run (so --overwrite starts a new W&B
    run)."""
    path = folder / "run_id"
    if resumed_step and path.is_file():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:16]
    path.write_text(run_id)
    return run_id


class MetricSinks:
    """The sinks chosen with --log, fed every metrics row (rank 0)."""

    def __init__(self, kinds: list[str] | tuple[str, ...], run_dir: Path, config: dict, resumed_step: int = 0):
        classes = {"tensorboard": TensorBoard, "wandb": WandB}
        self.sinks = [classes[k](run_dir, config, resumed_step) for k in dict.fromkeys(kinds)]

    def log(self, row: dict) -> None:
        for sink in self.sinks:
            sink.log(row)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
