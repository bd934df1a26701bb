"""CPU per step of the demo's condition `train` runs (tiny, batch 64, --workers 0, 1 torch thread), two source trees
side by side on the same data: the per-run CPU (start-up, steps, export), the in-loop seconds, whether both
trees logged the same losses, and the CPU of the data path alone (LaneStream + StepReader, the same steps).

  python benchmarks/bench_train_demo_step.py --data DEMO_OUT --trees /tmp/base_src,. --steps 600 --repeats 1

DEMO_OUT is a `make demo` output folder (CURATED/shards, TOKENIZER, RUN_warm/hf); each tree is a source checkout
whose `training.cli` is run with PYTHONPATH set to it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def train_args(data: Path, out: Path, steps: int) -> list[str]:
    """quickstart.train_args for the balanced condition, seed 1, with `steps` steps."""
    shards = sorted((data / "CURATED" / "shards").glob("*.tar"))
    spec = f"{shards[0].parent}/{{{shards[0].stem}..{shards[-1].stem}}}.tar"
    return ["--shards", spec, "--model", "tiny", "--tokenizer", str(data / "TOKENIZER"), "--batch-size", "64",
            "--lr", "0.002", "--warmup", "20", "--device", "cpu", "--out", str(out),
            "--init-from", str(data / "RUN_warm" / "hf"), "--steps", str(steps), "--workers", "0", "--seed", "1",
            "--save-every", str(steps)]


def run_once(tree: Path, data: Path, out: Path, steps: int) -> dict:
    """One `train` run from `tree`: CPU seconds (user + sys), in-loop seconds and the logged losses."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "training.cli", *train_args(data, out, steps)], cwd=tree, env=env,
                          capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "loop_s": float(re.search(r" in (\d+)s ->", proc.stderr).group(1)),
            "losses": [r["loss"] for r in rows]}


DATA_ONLY = """
import sys, time
import torch
torch.set_num_threads(1)
from training.data import expand_sources, make_loader
from training.stream import LaneStream, StepReader, StreamState
from training.tokenizer import load_tokenizer
spec, tok, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = StreamState(1, 64)
ds = LaneStream(expand_sources(spec), load_tokenizer(tok), 32, state, seed=1)
reader = StepReader(iter(make_loader(ds, 0)), 0, 64, 1, state)
start = time.process_time()
for _ in range(n):
    reader.next_step()
print(time.process_time() - start)
"""


def data_cpu(tree: Path, data: Path, steps: int) -> float:
    """CPU seconds of the data path alone for `steps` steps of the condition run (seed 1, 64 per step)."""
    args = train_args(data, Path("unused"), steps)
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", DATA_ONLY, args[1], args[5], str(steps)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--trees", required=True, help="comma-separated source trees (first = baseline)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    results: dict[str, list[dict]] = {str(t): [] for t in trees}
    with tempfile.TemporaryDirectory(prefix="bench_step.") as tmp:
        for r in range(args.repeats):
            for i, tree in enumerate(trees):
                results[str(tree)].append(run_once(tree, args.data, Path(tmp) / f"run{r}_{i}", args.steps))
                results[str(tree)][-1]["data_s"] = data_cpu(tree, args.data, args.steps)
    base = results[str(trees[0])][0]["losses"]
    print(f"{'tree':40s} {'CPU s/run':>10s} {'CPU s/step':>11s} {'loop s/step':>12s} {'data CPU s/step':>16s}"
          "  losses = baseline")
    for tree, runs in results.items():
        cpu = min(x["cpu_s"] for x in runs)
        loop = min(x["loop_s"] for x in runs)
        data = min(x["data_s"] for x in runs)
        same = all(x["losses"] == base for x in runs)
        print(f"{tree:40s} {cpu:10.1f} {cpu / args.steps:11.4f} {loop / args.steps:12.4f} {data / args.steps:16.4f}"
              f"  {same}")


if __name__ == "__main__":
    main()
