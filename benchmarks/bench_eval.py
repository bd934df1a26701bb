"""Benchmark `train eval`: images/s of zero-shot + retrieval evaluation, and of decoding alone.

Builds everything it needs in a temporary folder: a small SentencePiece tokenizer, a freshly
initialised model of the chosen preset exported with export_hf, an image folder (10 classes,
class names in en/de/ja) and the same images as a WebDataset shard with captions.

    .venv/bin/python benchmarks/bench_eval.py [--model tiny] [--images 512] [--batch-size 64] [--workers 0]
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = {"en": ["cat", "dog", "car", "tree", "bird", "house", "boat", "flower", "horse", "chair"],
           "de": ["Katze", "Hund", "Auto", "Baum", "Vogel", "Haus", "Boot", "Blume", "Pferd", "Stuhl"],
           "ja": ["猫", "犬", "車", "木", "鳥", "家", "船", "花", "馬", "椅子"]}


def photo_jpeg(rng: np.random.Generator, size=(500, 375)) -> bytes:
    """A smooth photo-like JPEG (gradient + shapes), so decoding costs what a real photo costs."""
    from PIL import Image, ImageDraw

    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3) + np.stack([x / w, y / h, (x + y) / (w + h)], -1) * rng.uniform(-120, 120, 3)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        draw.ellipse((x0, y0, x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 200))),
                     fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def build_inputs(root: Path, preset: str, n: int) -> tuple[Path, Path, str]:
    """(model folder, image folder, shard path) under `root`."""
    import webdataset as wds

    from training.export import export_hf
    from training.models import PRESETS, build_model
    from training.tokenizer import load_tokenizer, special_ids, train_sentencepiece

    corpus = [f"{t} {c}" for names in CLASSES.values() for c in names
              for t in ("a photo of a", "ein Foto von", "写真")] * 20
    train_sentencepiece(corpus, 200, root / "tok")
    tok = load_tokenizer(root / "tok")
    model = build_model(preset, len(tok), **special_ids(tok))
    hf = export_hf(model, root / "tok", PRESETS[preset].image_size, root / "run" / "hf")
    folder = root / "folder"
    rng = np.random.default_rng(0)
    (root / "shards").mkdir()
    with wds.TarWriter(str(root / "shards" / "00000.tar")) as shard:
        for i in range(n):
            c = i % len(CLASSES["en"])
            data = photo_jpeg(rng)
            (folder / str(c)).mkdir(parents=True, exist_ok=True)
            (folder / str(c) / f"{i:06d}.jpg").write_bytes(data)
            shard.write({"__key__": f"{i:06d}", "jpg": data, "txt": f"a photo of a {CLASSES['en'][c]} number {i}",
                         "json": {"label": c, "lang": "en"}})
    for lang, names in CLASSES.items():
        (folder / f"classnames.{lang}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
        (root / "shards" / f"classnames.{lang}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return hf, folder, str(root / "shards" / "00000.tar")


def decode_rate(hf: Path, folder: Path, workers: int, batch_size: int) -> float:
    """Images/s of reading + decoding + preprocessing alone (no model)."""
    import torch
    from transformers import AutoImageProcessor

    from training.eval import DecodedImages, as_list
    from training.eval_data import open_source

    source = open_source(folder)
    loader = torch.utils.data.DataLoader(DecodedImages(source, AutoImageProcessor.from_pretrained(hf)),
                                         batch_size=batch_size, num_workers=workers, collate_fn=as_list)
    t = time.perf_counter()
    n = sum(len(b) for b in loader)
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="preset (tiny, S-16, B-32, ...)")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch

    from training.eval import run_eval

    root = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    try:
        hf, folder, shard = build_inputs(root, args.model, args.images)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        print(f"# {args.model}, {args.images} images 500x375 JPEG, batch {args.batch_size}, workers {args.workers}, "
              f"{device}, torch threads {torch.get_num_threads()}", file=sys.stderr)
        rate = decode_rate(hf, folder, args.workers, args.batch_size)
        print(f"decode + preprocess only: {rate:.1f} img/s")
        for name, data in (("folder, zero-shot en/de/ja", folder),
                           ("webdataset, zero-shot en/de/ja + retrieval", shard)):
            cpu = time.process_time()
            r = run_eval(hf, data, root / "eval.json", batch_size=args.batch_size, workers=args.workers, device=device)
            cpu = time.process_time() - cpu
            print(f"{name}: {r['images_per_s']:.1f} img/s ({r['counts']['images']} images, {r['seconds']:.1f} s wall, "
                  f"{cpu:.1f} s CPU in the main process)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
