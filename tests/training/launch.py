"""Run `train` under torchrun (gloo on CPU) from tests; importable as `launch` from any test folder."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def torchrun(nproc: int, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node nproc -m training.cli ARGS` on the CPU; one process runs without
    torchrun, so its exit status and last stderr line are the CLI's own."""
    exe = Path(sys.executable).parent / "torchrun"
    launcher = [str(exe) if exe.exists() else shutil.which("torchrun"), "--standalone", "--nproc_per_node", str(nproc)]
    cmd = [*(launcher if nproc > 1 else [sys.executable]), "-m", "training.cli", *map(str, args), "--device", "cpu"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def metric_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def step_uids(run: Path) -> list[list[str]]:
    """Per step, the sorted uids every rank consumed (RUN/samples/rank*.jsonl, from --log-samples)."""
    steps: dict[int, list[str]] = {}
    for f in sorted((run / "samples").glob("rank*.jsonl")):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            steps.setdefault(row["step"], []).extend(row["uids"])
    return [sorted(steps[s]) for s in sorted(steps)]


def hf_weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "hf" / "model.safetensors")
