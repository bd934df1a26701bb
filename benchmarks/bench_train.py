"""Training throughput: data loader alone (plain vs online curation) and train steps per model.

Self-contained: writes its own DESIGN-format shards (256 px JPEGs, 1-3 matched texts each, an online
curation.json) and a small SentencePiece tokenizer into a temp dir, then measures with the real code
(training.data.ShardStream, training.train.Trainer.train_step) and writes JSON to --json.

  .venv/bin/python benchmarks/bench_train.py --json /tmp/bench_train.json                      # CPU
  python benchmarks/bench_train.py --device cuda --models B-32,H-14 --precision bf16 --json r.json  # GPU
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ["red", "green", "blue", "yellow", "purple", "cyan", "orange", "grey", "black", "white"]
LANGS = ["en", "de", "zh"]


def write_shards(root: Path, n_shards: int, per_shard: int, px: int = 256) -> str:
    """DESIGN CURATED layout with an online curation.json; returns the brace spec."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "shards").mkdir(parents=True)
    n_entries = len(WORDS) * len(LANGS)
    counts = np.zeros(n_entries, dtype=np.int64)
    base = rng.integers(0, 255, (px, px, 3)).astype(np.int16)
    i = 0
    for s in range(n_shards):
        with wds.TarWriter(str(root / "shards" / f"{s:05d}.tar")) as w:
            for _ in range(per_shard):
                c = int(rng.zipf(1.5)) % len(WORDS)
                img = np.clip(base // 3 + rng.integers(0, 170, 3), 0, 255).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(np.roll(img, i, axis=0)).save(buf, format="JPEG", quality=90)
                texts = []
                for _ in range(int(rng.integers(1, 4))):
                    lang = LANGS[int(rng.integers(len(LANGS)))]
                    e = LANGS.index(lang) * len(WORDS) + c
                    counts[e] += 1
                    texts.append([f"a photo of a {WORDS[c]} thing number {i} ({lang})", lang, [e]])
                meta = {"uid": f"u{i}", "url": f"http://x/{i}.jpg", "lang": texts[0][1], "entry_ids": texts[0][2],
                        "text": texts[0][0], "texts": texts}
                w.write({"__key__": f"{i:09d}", "jpg": buf.getvalue(), "txt": texts[0][0], "json": json.dumps(meta)})
                i += 1
    pq.write_table(pa.table({"entry_id": pa.array(np.arange(n_entries), pa.int32()),
                             "lang": [LANGS[k // len(WORDS)] for k in range(n_entries)], "count": counts}),
                   root / "counts.parquet")
    (root / "curation.json").write_text(json.dumps({"online": True, "t": 1e12, "seed": 0, "counts": "counts.parquet"}))
    return str(root / "shards" / ("{00000..%05d}.tar" % (n_shards - 1)))


def loader_rate(spec: str, tokenizer, image_size: int, workers: int, batch: int, batches: int, curation) -> dict:
    """Delivered and read samples/s of ShardStream + DataLoader alone (after one warm-up batch per worker)."""
    from training.data import ShardStream, expand_sources, make_loader

    ds = ShardStream(expand_sources(spec), tokenizer, batch, image_size, num_workers=workers, curation=curation)
    it = iter(make_loader(ds, workers))
    for _ in range(max(workers, 1)):
        next(it)
    t0, delivered, seen = time.perf_counter(), 0, 0
    for _ in range(batches):
        b = next(it)
        delivered += len(b["uids"])
        seen += b["stats"]["seen"]
    dt = time.perf_counter() - t0
    del it
    return {"samples_per_s": delivered / dt, "read_per_s": seen / dt, "batches": batches, "batch": batch,
            "workers": workers, "image_size": image_size}


def train_rate(spec: str, tok_dir: str, model: str, args, out: Path) -> dict:
    """Optimiser steps/s of Trainer.train_step on loader batches (compute only; data prefetched)."""
    import torch

    from training.distributed import init_distributed
    from training.train import TrainConfig, Trainer

    cfg = TrainConfig(shards=spec, tokenizer=tok_dir, out=str(out / model), model=model, steps=args.steps + 1,
                      batch_size=args.train_batch, precision=args.precision, workers=0, device=args.device,
                      grad_checkpointing=args.grad_checkpointing, model_vocab=args.model_vocab or None)
    tr = Trainer(cfg, init_distributed(args.device))
    from training.data import ShardStream, make_loader
    it = iter(make_loader(ShardStream(tr.sources, tr.tokenizer, cfg.batch_size, tr.image_size), 0))
    batch = next(it)
    tr.model.train()
    sync = torch.cuda.synchronize if tr.d.device.type == "cuda" else (lambda: None)
    tr.train_step([batch])
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = tr.train_step([batch])
    sync()
    dt = time.perf_counter() - t0
    params = sum(p.numel() for p in tr.model.parameters())
    mem = torch.cuda.max_memory_allocated() / 2**30 if tr.d.device.type == "cuda" else None
    return {"model": model, "samples_per_s": args.steps * cfg.batch_size / dt, "step_s": dt / args.steps,
            "batch": cfg.batch_size, "precision": args.precision, "device": str(tr.d.device), "params": params,
            "image_size": tr.image_size, "loss": float(loss), "max_gpu_mem_gib": mem}


def fit_train_rate(spec: str, tok_dir: str, model: str, args, out: Path) -> dict:
    """train_rate at --train-batch, halving the batch on CUDA out-of-memory (down to 8)."""
    import gc

    import torch

    batch, requested = args.train_batch, args.train_batch
    while True:
        try:
            args.train_batch = batch
            return {**train_rate(spec, tok_dir, model, args, out), "requested_batch": requested}
        except torch.OutOfMemoryError:
            gc.collect()
            torch.cuda.empty_cache()
            if batch <= 8:
                return {"model": model, "error": f"out of GPU memory even at batch {batch}"}
            batch //= 2
        finally:
            args.train_batch = requested
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()


def end_to_end(spec: str, tok_dir: str, args, out: Path) -> dict:
    """`train` on the tiny model with DataLoader workers: mean samples/s and data-wait share (steps 3+)."""
    from training.train import TrainConfig, train

    run = out / "e2e"
    train(TrainConfig(shards=spec, tokenizer=tok_dir, out=str(run), model="tiny", steps=args.e2e_steps,
                      batch_size=args.loader_batch, workers=args.workers, device=args.device, save_every=10**9))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][2:]
    return {"steps": len(rows), "samples_per_s": float(np.mean([r["samples_per_s"] for r in rows])),
            "data_wait_mean": float(np.mean([r["data_wait"] for r in rows])),
            "data_wait_max": float(np.max([r["data_wait"] for r in rows]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--models", default="tiny,B-32", help="comma-separated presets for the train-step rate")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "amp"])
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--train-batch", type=int, default=None, help="per-step batch (default 32 on CPU, 128 on GPU)")
    ap.add_argument("--steps", type=int, default=3, help="timed train steps per model (after 1 warm-up)")
    ap.add_argument("--model-vocab", type=int, default=None,
                    help="model vocabulary (default: 901629 = XLM-V on cuda, the small tokenizer's on cpu)")
    ap.add_argument("--workers", type=int, default=min(8, max(1, (os.cpu_count() or 2) - 1)), help="loader workers")
    ap.add_argument("--loader-batch", type=int, default=64)
    ap.add_argument("--loader-batches", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3,
                    help="interleaved loader measurements per configuration (median reported)")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--per-shard", type=int, default=1000)
    ap.add_argument("--e2e-steps", type=int, default=30, help="steps of the end-to-end tiny `train` run (0: skip)")
    ap.add_argument("--json", required=True, help="write results here")
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    args.train_batch = args.train_batch or (128 if cuda else 32)
    if args.model_vocab is None and cuda:
        args.model_vocab = 901629

    from training.data import expand_sources, load_curation
    from training.models import PRESETS
    from training.tokenizer import load_tokenizer, train_sentencepiece

    results: dict = {"args": vars(args), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_train.") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        spec = write_shards(tmp / "curated", args.shards, args.per_shard)
        captions = [f"a photo of a {w} thing number {i} ({l})" for i in range(2000) for w in WORDS[:2] for l in LANGS]
        train_sentencepiece(captions, 500, tmp / "tok")
        tok = load_tokenizer(tmp / "tok")
        results["setup_s"] = time.perf_counter() - t0
        cur = load_curation(expand_sources(spec), 0)
        cur_half = load_curation(expand_sources(spec), 0, t=args.per_shard * args.shards / 100)
        loader = {}
        configs = [(f"{name}@{size}", size, c) for size in sorted({PRESETS["tiny"].image_size, 224})
                   for name, c in (("plain", None), ("online_keep_all", cur), ("online_balanced", cur_half))]
        runs: dict[str, list[dict]] = {k: [] for k, _, _ in configs}
        for _ in range(args.repeats):  # interleaved repeats, median: the shared machine's load drifts
            for key, size, c in configs:
                runs[key].append(loader_rate(spec, tok, size, args.workers, args.loader_batch, args.loader_batches, c))
        for key, _, _ in configs:
            rs = sorted(runs[key], key=lambda r: r["read_per_s"])
            loader[key] = {**rs[len(rs) // 2], "all_read_per_s": [r["read_per_s"] for r in runs[key]]}
            r = loader[key]
            print(f"loader {key:20s}: {r['samples_per_s']:8.0f} samples/s delivered, {r['read_per_s']:8.0f} read/s "
                  f"(median of {len(rs)})", flush=True)
        results["loader"] = loader
        for size in sorted({PRESETS["tiny"].image_size, 224}):
            plain, online = loader[f"plain@{size}"]["read_per_s"], loader[f"online_keep_all@{size}"]["read_per_s"]
            results[f"online_overhead@{size}"] = 1 - online / plain
        results["train"] = {}
        for model in args.models.split(","):
            r = fit_train_rate(spec, str(tmp / "tok"), model, args, tmp / "runs")
            results["train"][model] = r
            if "error" in r:
                print(f"train {model}: {r['error']}", flush=True)
                continue
            print(f"train {model:8s} {args.precision} {r['device']}: {r['samples_per_s']:8.1f} samples/s "
                  f"(batch {r['batch']}, {r['step_s']:.3f} s/step, {r['params'] / 1e6:.1f}M params)", flush=True)
        if "tiny" in results["train"]:
            tiny = results["train"]["tiny"]["samples_per_s"]
            results["loader_over_tiny_train"] = loader[f"plain@{PRESETS['tiny'].image_size}"]["samples_per_s"] / tiny
        if args.e2e_steps:
            results["end_to_end_tiny"] = end_to_end(spec, str(tmp / "tok"), args, tmp / "runs")
            print(f"end-to-end tiny train: {results['end_to_end_tiny']}", flush=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k not in ("loader", "train", "args")}, indent=2))


if __name__ == "__main__":
    main()
