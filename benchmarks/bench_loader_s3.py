"""Training loader samples/s reading shards from a local `rclone serve s3` vs local disk, as a ratio in one run.

    python benchmarks/bench_loader_s3.py --curated CURATED --tokenizer TOK [--steps 40 --batch 32 --repeats 5]

Each repeat measures local, S3, local (so warm-up and load drift favour neither) and gives one S3/local ratio;
the median ratio over repeats is the result (one run on a shared machine is noisy).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def samples_per_s(spec: str, tokenizer: str, steps: int, batch: int, workers: int) -> float:
    from training.data import expand_sources, make_loader
    from training.stream import LaneStream, StepReader, StreamState
    from training.tokenizer import load_tokenizer

    state = StreamState(max(workers, 1), batch)
    ds = LaneStream(expand_sources(spec), load_tokenizer(tokenizer), 224, state)
    reader = StepReader(iter(make_loader(ds, workers)), workers, batch, 1, state)
    reader.next_step()
    t0 = time.perf_counter()
    for _ in range(steps):
        reader.next_step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--curated", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    shards = sorted(Path(args.curated, "shards").glob("*.tar"))
    spec_tail = f"{{{shards[0].stem}..{shards[-1].stem}}}.tar"
    root = Path(tempfile.mkdtemp(prefix="s3root-"))
    shutil.copytree(args.curated, root / "bench" / "curated")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("rclone") or str(Path(sys.executable).with_name("rclone"))
    key, secret = "bench-key", "bench-secret-0123456789"
    proc = subprocess.Popen([exe, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
                             "--auth-key", f"{key},{secret}", "--config", "/dev/null"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                      AWS_DEFAULT_REGION="us-east-1")
    try:
        time.sleep(2)
        run_local = lambda: samples_per_s(str(Path(args.curated, "shards", spec_tail)), args.tokenizer,  # noqa: E731
                                          args.steps, args.batch, args.workers)
        run_s3 = lambda: samples_per_s(f"s3://bench/curated/shards/{spec_tail}", args.tokenizer,  # noqa: E731
                                       args.steps, args.batch, args.workers)
        runs = []
        for _ in range(args.repeats):
            before = run_local()
            s3 = run_s3()
            runs.append((s3, (before + run_local()) / 2))
    finally:
        proc.terminate()
        shutil.rmtree(root, ignore_errors=True)
    ratios = [s3 / local for s3, local in runs]
    print(json.dumps({"local_samples_per_s": [round(local, 1) for _, local in runs],
                      "s3_samples_per_s": [round(s3, 1) for s3, _ in runs],
                      "s3_over_local": [round(r, 3) for r in ratios],
                      "median_s3_over_local": round(statistics.median(ratios), 3)}))


if __name__ == "__main__":
    main()
