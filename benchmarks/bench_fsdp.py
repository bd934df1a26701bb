"""CPU: 2-process gloo step time FSDP vs DDP (train CLI under torchrun), and per-rank parameter + optimizer
bytes for 1 vs 2 ranks measured on the live shards (fully_shard, one AdamW step to create its state).

    python benchmarks/bench_fsdp.py --shards 'C/shards/{00000..00003}.tar' --tokenizer TOK --model tiny \\
        --bytes-model S-16
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def step_seconds(shards: str, tokenizer: str, model: str, fsdp: bool, steps: int, batch: int) -> float:
    """Median step time of steps 2.. of a 2-process gloo run (from metrics.jsonl samples/s)."""
    out = Path(tempfile.mkdtemp(prefix="bench-fsdp-"))
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "training.cli", "--shards", shards,
           "--tokenizer", tokenizer, "--model", model, "--steps", str(steps), "--batch-size", str(batch),
           "--workers", "1", "--device", "cpu", "--out", str(out / "run"), "--save-every", str(steps * 10),
           *(["--fsdp"] if fsdp else [])]
    subprocess.run(cmd, check=True, capture_output=True)
    rows = [json.loads(x) for x in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(2 * batch / r["samples_per_s"] for r in rows[1:])


def _bytes_worker(rank: int, world: int, init: str, model_name: str, fsdp: bool, out: str) -> None:
    import torch.distributed as dist

    from training.fsdp import shard
    from training.models import build_model
    from training.train import ClipForward

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model = build_model(model_name, 1000)
    root = ClipForward(model)
    if fsdp:
        shard(root, model, "fp32")
    opt = torch.optim.AdamW(model.parameters())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    local = lambda t: t.to_local() if hasattr(t, "to_local") else t  # noqa: E731
    params = sum(local(p).numel() * local(p).element_size() for p in model.parameters())
    state = sum(local(v).numel() * local(v).element_size()
                for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.ndim > 0)
    if rank == 0:
        Path(out).write_text(json.dumps({"params": params, "optimizer": state}))
    dist.destroy_process_group()


def rank_bytes(model: str, world: int, fsdp: bool) -> dict:
    import torch.multiprocessing as mp

    d = tempfile.mkdtemp()
    mp.start_processes(_bytes_worker, args=(world, f"file://{d}/store", model, fsdp, f"{d}/out.json"), nprocs=world,
                       start_method="spawn")
    return json.loads(Path(d, "out.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--bytes-model", default="S-16")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    res = {f"{k}_step_s": step_seconds(args.shards, args.tokenizer, args.model, k == "fsdp", args.steps,
                                       args.batch_size) for k in ("ddp", "fsdp")}
    for name, world, fsdp in (("1rank", 1, False), ("2rank_ddp", 2, False), ("2rank_fsdp", 2, True)):
        res[name] = rank_bytes(args.bytes_model, world, fsdp)
    full = res["1rank"]["params"] + res["1rank"]["optimizer"]
    res["fsdp_fraction_of_ddp"] = (res["2rank_fsdp"]["params"] + res["2rank_fsdp"]["optimizer"]) / full
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
