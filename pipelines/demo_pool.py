"""Embedded demo pool: rendered images with web-like multilingual alt-texts, in img2dataset's format.

`make_demo_pool(out_dir, n_images, seed)` writes, deterministically for a given (n_images, seed, ...):

- `OUT/pool/`: exactly what `img2dataset --output_format webdataset` writes: per shard `NNNNN.tar`
  (`KEY.jpg`, `KEY.txt`, `KEY.json`), `NNNNN.parquet` (caption, url, key, status, error_message,
  width, height, original_width, original_height, exif, sha256) and `NNNNN_stats.json`; keys are
  shard * 10**ceil(log10(samples per shard)) + row, zero-padded as img2dataset's `compute_key`.
- `OUT/eval/`: a held-out image folder `eval/<class_id>/*.jpg` with `eval/classnames.json`
  {lang: [name per class]} for every demo language (different images from the pool).
- `OUT/eval_captions/00000.tar`: the same held-out images as WebDataset samples with a clean caption
  in one of the demo languages (`.txt`) and `.json` {label, lang}, for image<->text retrieval.
- `OUT/metadata/<lang>.txt`: the concept names, one per line, for `curate metadata add`, so
  every concept word is a metadata entry whatever the packaged sources' cut-offs.

The pool is built so that curation has something to fix: 117 concepts (symbols named in 10
languages, pipelines.demo_concepts) with Zipf frequencies (s = 1.1, head:tail ≈ 190:1), web-like
alt-texts with noise (pipelines.demo_captions), symbols rendered with pose, scale, colour, clutter
and background variation (pipelines.demo_render), some images with several alt-texts (same url in
several rows, as Common Crawl gives), and some rows that failed to download.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from core.atomic import write_bytes_atomic, write_json_atomic, write_parquet_atomic
from core.errors import UserError
from pipelines.demo_captions import NOISE_KINDS, concept_caption, noise_caption
from pipelines.demo_concepts import GLYPHS, LANGS, names
from pipelines.demo_render import render_glyph

# English-heavy, like the web
LANG_WEIGHTS = {"en": 0.3, **{lang: 0.7 / (len(LANGS) - 1) for lang in LANGS if lang != "en"}}
ZIPF_S = 1.1  # concept k (1-based rank) has weight 1 / k**1.1: head:tail = 117**1.1 ≈ 190:1
SAMPLES_PER_SHARD = 10000
FAIL_ERRORS = ["HTTP Error 404: Not Found", "HTTP Error 403: Forbidden",
               "<urlopen error [Errno -2] Name or service not known>", "The read operation timed out"]
DEFAULT_BASE_URL = "https://images.worldclip-demo.invalid/img"


@dataclass(frozen=True)
class Row:
    """One pool row (one alt-text of one image)."""
    image_id: int
    concept: int
    caption: str
    lang: str  # language the caption was written in ("" for noise without language)
    failed: str | None  # img2dataset error_message for a failed download, else None


def concept_ranks() -> list[int]:
    """Concept ids in frequency order (rank 1 first): a fixed shuffle, so the head mixes kinds of symbols."""
    order = list(range(len(GLYPHS)))
    random.Random("worldclip-demo-ranks").shuffle(order)
    return order


def concept_weights(s: float = ZIPF_S) -> list[float]:
    """Zipf weight of each concept id (1 / rank**s)."""
    weights = [0.0] * len(GLYPHS)
    for rank, concept in enumerate(concept_ranks(), start=1):
        weights[concept] = 1.0 / rank ** s
    return weights


def render_image(concept: int, rng: random.Random, size: int = 64) -> bytes:
    """JPEG bytes of concept `concept` (see demo_render.render_glyph)."""
    return render_glyph(GLYPHS[concept], rng, size)


def plan_rows(n_images: int, seed: int, noise: float = 0.15, multi: float = 0.1, failed: float = 0.03) -> list[Row]:
    """All pool rows in order: one per alt-text; a `multi` share of images get 2-3 alt-texts."""
    rng = random.Random(f"worldclip-demo-pool:{seed}")
    weights = concept_weights()
    lang_w = [LANG_WEIGHTS[x] for x in LANGS]
    rows: list[Row] = []
    for image_id in range(n_images):
        concept = rng.choices(range(len(GLYPHS)), weights=weights)[0]
        n_texts = rng.choice([2, 3]) if rng.random() < multi else 1
        for _ in range(n_texts):
            lang = rng.choices(LANGS, weights=lang_w)[0]
            if rng.random() < noise:
                kind = rng.choice(NOISE_KINDS)
                caption = noise_caption(kind, concept, lang, rng)
                lang = "" if kind in ("filename", "click", "other_lang", "empty") else lang
            else:
                caption = concept_caption(concept, lang, rng)
            fail = rng.choice(FAIL_ERRORS) if rng.random() < failed else None
            rows.append(Row(image_id, concept, caption, lang, fail))
    return rows


def image_rng(image_id: int, seed: int, stream: str = "pool") -> random.Random:
    """The renderer's random state for one image: a function of (seed, stream, image_id) only."""
    return random.Random(f"worldclip-demo-{stream}:{seed}:{image_id}")


def image_url(image_id: int, base_url: str = DEFAULT_BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/{image_id:07d}.jpg"


# ---------------------------------------------------------------- writers

def img2dataset_key(shard_id: int, row: int, samples_per_shard: int = SAMPLES_PER_SHARD,
                    oom_shard_count: int = 5) -> str:
    """img2dataset's `compute_key`: shard * 10**ceil(log10(samples per shard)) + row, zero-padded."""
    oom_sample = math.ceil(math.log10(samples_per_shard))
    return f"{(10 ** oom_sample) * shard_id + row:0{oom_sample + oom_shard_count}d}"


PARQUET_SCHEMA = pa.schema([
    ("caption", pa.string()), ("url", pa.string()), ("key", pa.string()), ("status", pa.string()),
    ("error_message", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("original_width", pa.int32()), ("original_height", pa.int32()), ("exif", pa.string()), ("sha256", pa.string()),
])


def _write_shard(folder: Path, shard_id: int, rows: list[Row], seed: int, size: int, base_url: str,
                 samples_per_shard: int) -> dict:
    """Write NNNNN.tar, NNNNN.parquet and NNNNN_stats.json for one shard as img2dataset does."""
    import webdataset as wds

    name = f"{shard_id:05d}"
    meta_rows: list[dict] = []
    status_dict: dict[str, int] = {}
    tar_buf = io.BytesIO()
    writer = wds.TarWriter(tar_buf, mtime=0.0)
    image_cache: dict[int, bytes] = {}
    for i, row in enumerate(rows):
        key = img2dataset_key(shard_id, i, samples_per_shard)
        meta = {"caption": row.caption, "url": image_url(row.image_id, base_url), "key": key, "status": None,
                "error_message": row.failed, "width": None, "height": None, "original_width": None,
                "original_height": None, "exif": None, "sha256": None}
        if row.failed is not None:
            meta["status"] = "failed_to_download"
            status_dict[row.failed] = status_dict.get(row.failed, 0) + 1
        else:
            if row.image_id not in image_cache:
                image_cache[row.image_id] = render_image(row.concept, image_rng(row.image_id, seed), size)
            img = image_cache[row.image_id]
            meta.update(status="success", width=size, height=size, original_width=size, original_height=size,
                        exif="{}", sha256=hashlib.sha256(img).hexdigest())
            status_dict["success"] = status_dict.get("success", 0) + 1
            writer.write({"__key__": key, "jpg": img, "txt": row.caption, "json": json.dumps(meta, indent=4)})
        meta_rows.append(meta)
    writer.close()
    write_bytes_atomic(folder / f"{name}.tar", tar_buf.getvalue())
    write_parquet_atomic(folder / f"{name}.parquet", pa.Table.from_pylist(meta_rows, schema=PARQUET_SCHEMA))
    successes = status_dict.get("success", 0)
    # img2dataset's fields; times are zero so that the output is byte-identical across runs
    stats = {"count": len(rows), "successes": successes, "failed_to_download": len(rows) - successes,
             "failed_to_resize": 0, "duration": 0.0, "start_time": 0.0, "end_time": 0.0,
             "status_dict": dict(sorted(status_dict.items()))}
    write_json_atomic(folder / f"{name}_stats.json", stats)
    return stats


def write_eval_set(folder: Path, captions_folder: Path, per_class: int, seed: int, size: int = 64) -> None:
    """Held-out, class-balanced images `folder/<class_id>/<n>.jpg` (class_id 000..116 in GLYPHS order) +
    classnames.json, and the same images with captions (languages in turn) as a WebDataset shard."""
    import webdataset as wds

    classnames = {lang: list(names()[lang]) for lang in LANGS}
    rng = random.Random(f"worldclip-demo-eval-captions:{seed}")
    buf = io.BytesIO()
    writer = wds.TarWriter(buf, mtime=0.0)
    for c in range(len(GLYPHS)):
        for k in range(per_class):
            img = render_image(c, image_rng(c * 100000 + k, seed, stream="eval"), size)
            write_bytes_atomic(folder / f"{c:03d}" / f"{k:04d}.jpg", img)
            lang = LANGS[(c * per_class + k) % len(LANGS)]
            writer.write({"__key__": f"{c:03d}_{k:04d}", "jpg": img, "txt": concept_caption(c, lang, rng),
                          "json": json.dumps({"label": c, "lang": lang})})
    writer.close()
    write_json_atomic(folder / "classnames.json", classnames)
    write_bytes_atomic(captions_folder / "00000.tar", buf.getvalue())
    write_json_atomic(captions_folder / "classnames.json", classnames)


def write_demo_metadata(folder: Path) -> None:
    """One file per language with the concept names, for `curate metadata add --lang L --file F`."""
    for lang in LANGS:
        write_bytes_atomic(folder / f"{lang}.txt", ("\n".join(names()[lang]) + "\n").encode())


@dataclass(frozen=True)
class DemoPool:
    pool: Path
    eval: Path
    eval_captions: Path
    metadata: Path
    rows: int
    images: int
    failed: int


def make_demo_pool(out_dir: str | Path, n_images: int = 20000, seed: int = 0, shards: int | None = None,
                   image_size: int = 64, eval_per_class: int = 30, base_url: str = DEFAULT_BASE_URL,
                   progress: bool = True, workers: int = 1) -> DemoPool:
    """Write the demo pool (img2dataset format), the held-out eval set and the demo metadata lists.

    `shards=None` splits rows as img2dataset's default (10000 per shard); `shards=K` splits them into
    K shards as img2dataset would with `number_sample_per_shard = ceil(rows / K)`. `workers` processes
    render shards side by side; each image depends only on (seed, image id), so the output is the same.
    """
    if n_images < 1 or (shards is not None and shards < 1) or workers < 1:
        raise UserError(f"--images ({n_images}), --shards ({shards}) and --workers ({workers}) must be >= 1")
    out = Path(out_dir)
    rows = plan_rows(n_images, seed)
    per_shard = SAMPLES_PER_SHARD if shards is None else max(1, math.ceil(len(rows) / shards))
    chunks = [rows[i:i + per_shard] for i in range(0, len(rows), per_shard)]
    jobs = [(out / "pool", shard_id, chunk, seed, image_size, base_url, per_shard)
            for shard_id, chunk in enumerate(chunks)]
    failed = sum(stats["failed_to_download"] for stats in _write_shards(jobs, workers, progress))
    write_eval_set(out / "eval", out / "eval_captions", eval_per_class, seed, image_size)
    write_demo_metadata(out / "metadata")
    return DemoPool(out / "pool", out / "eval", out / "eval_captions", out / "metadata", len(rows), n_images, failed)


def _write_shards(jobs: list[tuple], workers: int, progress: bool) -> list[dict]:
    """Each job's `_write_shard(*job)` stats, in `workers` processes (in this one for 1)."""
    from tqdm import tqdm

    if workers == 1 or len(jobs) == 1:
        return [_write_shard(*job) for job in tqdm(jobs, desc="demo pool shards", disable=not progress)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # the largest shards first, so that the last one left is the short tail shard
    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][2]))
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {i: pool.submit(_write_shard, *jobs[i]) for i in order}
        return [futures[i].result() for i in tqdm(range(len(jobs)), desc="demo pool shards", disable=not progress)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo_pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True,
                        help="output folder: writes OUT/pool, OUT/eval, OUT/eval_captions, OUT/metadata")
    parser.add_argument("--images", type=int, default=20000, help="number of distinct images (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="seed; same seed and sizes give byte-identical output")
    parser.add_argument("--shards", type=int, default=None,
                        help="number of img2dataset shards (default: 10000 rows per shard, as img2dataset)")
    parser.add_argument("--image-size", type=int, default=64, help="rendered image side in pixels (default 64)")
    parser.add_argument("--eval-per-class", type=int, default=30, help="held-out images per class (default 30)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="url prefix written in the pool's url column")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering shards side by side (default 1)")
    args = parser.parse_args(argv)
    try:
        p = make_demo_pool(args.out, args.images, args.seed, args.shards, args.image_size, args.eval_per_class,
                           args.base_url, workers=args.workers)
    except UserError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"demo pool: {p.rows} alt-texts of {p.images} images ({p.failed} failed downloads) in {p.pool}; "
          f"eval set in {p.eval} and {p.eval_captions}; demo metadata lists in {p.metadata}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
