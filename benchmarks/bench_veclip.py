"""Benchmark VeCLIP's curation steps: `curate recaption` images/s per CPU core (tiny random captioner;
`--size base` for a real-size ViT-B/16 + GPT-2-base-shaped one, e.g. on a GPU) and `curate captions
add` MB/s of shards rewritten.

Builds a CURATED in a temporary folder: `--images` photo-like 500x375 JPEGs in shards of
`--shard-size`, written with curation.shards like `curate balance` writes them.

    .venv/bin/python benchmarks/bench_veclip.py [--images 256] [--shard-size 64] [--size tiny|base]
                                                [--device cpu|cuda] [--batch-size 16] [--max-new-tokens 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "curation"))

SIZES = {"tiny": {},  # the test model (model_factory's defaults)
         "base": {"hidden": 768, "layers": 12, "image_size": 224, "heads": 12, "patch": 16, "ffn": 3072}}


def make_curated(out: Path, images: int, shard_size: int) -> int:
    """CURATED/shards/*.tar with `images` samples; returns the bytes written."""
    from bench_eval import photo_jpeg
    from curation.shards import sample_key, sample_members, shard_name, write_tar

    rng = np.random.default_rng(0)
    (out / "shards").mkdir(parents=True)
    total = 0
    for s in range(0, images, shard_size):
        chunks = []
        for i in range(s, min(s + shard_size, images)):
            text = f"photo {i} of a garden"
            meta = {"uid": f"u{i:08d}", "url": f"http://x/{i}.jpg", "lang": "en", "entry_ids": [1], "text": text,
                    "texts": [[text, "en", [1]]]}
            chunks.append(sample_members(sample_key(i), photo_jpeg(rng), "jpg", text, meta))
        total += write_tar(out / "shards" / shard_name(s // shard_size), chunks)
    return total


def bench_attach(cur: Path, images: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.captions import attach

    caps = cur / "caps.parquet"
    pq.write_table(pa.table({"uid": [f"u{i:08d}" for i in range(images)],
                             "caption": [f"a detailed description of image {i}, with a lawn and trees"
                                         for i in range(images)]}), caps)
    t0, c0 = time.perf_counter(), time.process_time()
    entry = attach(cur, "bench", [caps])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    mb = entry["bytes_rewritten"] / 1e6
    return {"MB": round(mb, 1), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "MB_per_s": round(mb / wall, 1),
            "MB_per_cpu_s": round(mb / cpu, 1)}


def bench_recaption(cur: Path, model: Path, args) -> dict:
    import torch

    from curation.recaption import Decoding
    from curation.recaption_run import run_recaption

    if args.device == "cpu":
        torch.set_num_threads(1)
    os.environ["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "") if args.device == "cuda" else ""
    t0, c0 = time.perf_counter(), time.process_time()
    r = run_recaption(str(cur), str(model), "benchcap", batch_size=args.batch_size,
                      decoding=Decoding(max_new_tokens=args.max_new_tokens))[0]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"images": r["rows"], "caption_s": r["seconds"], "images_per_s": round(r["per_s"], 2),
            "images_per_cpu_s": round(r["rows"] / cpu, 2), "wall_with_attach_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--shard-size", type=int, default=64)
    ap.add_argument("--size", choices=list(SIZES), default="tiny")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=20)
    args = ap.parse_args()
    from model_factory import tiny_captioner

    tmp = Path(tempfile.mkdtemp(prefix="bench_veclip."))
    try:
        nbytes = make_curated(tmp / "cur", args.images, args.shard_size)
        print(f"CURATED: {args.images} images, {nbytes / 1e6:.1f} MB in {-(-args.images // args.shard_size)} shards")
        print("captions add:", bench_attach(tmp / "cur", args.images))
        model = tiny_captioner(tmp / "model", **SIZES[args.size])
        print(f"recaption ({args.size}, {args.device}, batch {args.batch_size}, {args.max_new_tokens} new tokens, "
              f"1 torch thread on CPU):", bench_recaption(tmp / "cur", model, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
