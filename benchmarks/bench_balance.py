"""Benchmark `curate balance`: sampling decisions/s/core, shard writing MB/s vs plain tar copy, peak RSS.

    .venv/bin/python benchmarks/bench_balance.py decisions --rows 10000000
    .venv/bin/python benchmarks/bench_balance.py shards --images 3000
    .venv/bin/python benchmarks/bench_balance.py rss --rows 4000000   # balance in a child process: its ru_maxrss

Rates are per CPU-second of the benchmark process (time.process_time), because the development
machines are shared; DuckDB's threads count in that time too. `decisions` builds a synthetic INDEX (32-hex
uids, ~1.3 texts per image, 1-4 entries per text, 4 languages x 50k entries, Zipf-like counts) of --rows rows
in parts of 1M and times the two
sampling stages in one process (1 core): scatter (read part, uid hash, bucket) and select (canonical
order, choice, keep, texts lists), then the whole URL-only run including the DuckDB ordering.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.outputs import content_hash
from curation import balance_run, shards  # noqa: E402
from curation.index import open_index  # noqa: E402

LANGS = ["en", "de", "ja", "fr"]
ENTRIES_PER_LANG = 50_000
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_uids(ids: np.ndarray) -> pa.Array:
    """32-char hex strings of 128-bit values derived from ids, built without a Python loop."""
    rng = np.random.default_rng(12345)
    salt = rng.integers(0, 2**63, size=2, dtype=np.uint64)
    words = np.stack([ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ salt[0],
                      ids.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9) ^ salt[1]], axis=1)
    raw = words.view(np.uint8).reshape(len(ids), 16)
    chars = np.empty((len(ids), 32), dtype=np.uint8)
    chars[:, 0::2], chars[:, 1::2] = HEX[raw >> 4], HEX[raw & 15]
    offsets = np.arange(len(ids) + 1, dtype=np.int32) * 32
    return pa.Array.from_buffers(pa.string(), len(ids), [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())])


def make_part(n: int, first_image: int, rng: np.random.Generator) -> pa.Table:
    per_image = rng.choice([1, 1, 1, 2], size=n)
    images = np.repeat(np.arange(first_image, first_image + n), per_image)[:n]
    lang = rng.integers(0, len(LANGS), n)
    k = rng.integers(1, 5, n)
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
    local = np.minimum(rng.zipf(1.2, offsets[-1]) - 1, ENTRIES_PER_LANG - 1)
    ids = (np.repeat(lang, k) * ENTRIES_PER_LANG + local).astype(np.int32)
    vocab = pa.array([f"a photo of something number {i} on a table" for i in range(5000)])
    sources = pa.array([f"/pool/{i:05d}.parquet" for i in range(64)])
    return pa.table({
        "uid": hex_uids(images), "text": vocab.take(pa.array(rng.integers(0, 5000, n))),
        "url": pa.nulls(n, pa.string()), "lang": pa.array(LANGS).take(pa.array(lang)),
        "entry_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids)),
        "source": sources.take(pa.array(rng.integers(0, 64, n))), "row": pa.array(rng.integers(0, 10**6, n)),
        "key": pa.nulls(n, pa.string())})


def make_index(folder: Path, rows: int, part_rows: int = 1_000_000) -> Path:
    (folder / "matches").mkdir(parents=True)
    n_ent = len(LANGS) * ENTRIES_PER_LANG
    entries = pa.table({"entry_id": pa.array(np.arange(n_ent), pa.int32()),
                        "lang": pa.array(np.repeat(LANGS, ENTRIES_PER_LANG)),
                        "entry": pa.array([f"e{i}" for i in range(n_ent)]), "source": pa.nulls(n_ent, pa.string())})
    pq.write_table(entries, folder / "entries.parquet")
    fp = content_hash(folder / "entries.parquet")
    counts = np.zeros(n_ent, np.int64)
    rng = np.random.default_rng(0)
    parts = {}
    for i, start in enumerate(range(0, rows, part_rows)):
        t = make_part(min(part_rows, rows - start), start, rng)
        vals = t.column("entry_ids").combine_chunks().values.to_numpy()
        counts += np.bincount(vals, minlength=n_ent)
        pq.write_table(t.replace_schema_metadata({"worldclip.metadata_fingerprint": fp}),
                       folder / "matches" / f"part-{i:05d}.parquet")
        parts[f"part-{i:05d}"] = {}
    pq.write_table(entries.select(["entry_id", "lang", "entry"]).append_column("count", pa.array(counts)),
                   folder / "counts.parquet")
    (folder / "manifest.json").write_text(json.dumps({"version": 1, "parts": parts, "complete": True,
                                                      "pool": {"format": "parquet", "image_column": None}}))
    return folder


def timed(fn, *args, **kw):
    """(result, CPU seconds of this process): the machine is shared, so rates are per CPU-second."""
    t0 = time.process_time()
    out = fn(*args, **kw)
    return out, time.process_time() - t0


def decision_core(table: pa.Table, p_entry: np.ndarray) -> np.ndarray:
    """Only the draws: uid hash, canonical grouping, choice, keep probability, keep."""
    from curation import sampling
    from curation.select import canonical_order, list_offsets

    keys_all = sampling.uid_hash64(table.column("uid"))
    order, starts = canonical_order(table, keys_all)
    first, n = starts[:-1], np.diff(starts)
    keys = keys_all[order[first]]
    chosen = order[first + sampling.choose_index(keys, n, 0)]
    offsets, ids = list_offsets(table.column("entry_ids").take(pa.array(chosen)))
    return sampling.keep_draw(keys, sampling.keep_probability(offsets, ids, p_entry), 0)


def bench_decisions(rows: int, t: float, tmp: Path) -> dict:
    index, gen_s = timed(make_index, tmp / "INDEX", rows)
    print(f"synthetic INDEX: {rows:,} rows in {gen_s:.1f}s", flush=True)
    idx = open_index(index)
    p_entry = np.full(int(idx.counts.num_rows), 0.3)
    work = tmp / "work"
    (work / "scatter").mkdir(parents=True)
    bits = (max(0, int(np.ceil(np.log2(rows / balance_run.ROWS_PER_BUCKET))))
            if rows > balance_run.ROWS_PER_BUCKET else 0)
    t_scatter = sum(timed(balance_run.scatter_part, str(p), str(work / "scatter" / f"{p.stem}.arrow"), bits)[1]
                    for p in idx.parts)
    files = sorted(str(p) for p in (work / "scatter").glob("*.arrow"))
    (work / "selected").mkdir()
    t_read = t_select = t_core = 0.0
    from curation.select import select_images
    for b in range(1 << bits):
        table, s = timed(balance_run.bucket_rows, files, b)
        t_read += s
        _, s = timed(select_images, table, p_entry, 0)
        t_select += s
        t_core += timed(decision_core, table, p_entry)[1]
    shutil.rmtree(work)
    w0 = time.perf_counter()
    _, t_total = timed(balance_run.run_balance, str(index), str(tmp / "CUR"), t=t, workers=1)
    wall = time.perf_counter() - w0
    stats = json.loads((tmp / "CUR" / "stats.json").read_text())
    res = {"rows": rows, "images": stats["totals"]["images"], "kept": stats["totals"]["kept"],
           "decision_core_rows_per_s (hash, group, choose, keep)": rows / t_core,
           "scatter_rows_per_s": rows / t_scatter, "select_rows_per_s": rows / t_select,
           "bucket_read_rows_per_s": rows / t_read,
           "sampling_rows_per_s (scatter+read+select)": rows / (t_scatter + t_read + t_select),
           "end_to_end_rows_per_cpu_s (URL-only run, incl. DuckDB order + outputs)": rows / t_total,
           "end_to_end_cpu_s": t_total, "end_to_end_wall_s": wall}
    return res


def bench_shards(n_images: int, tmp: Path) -> dict:
    """Pool of WebDataset tars with ~60 KB JPEGs, all kept (t huge): write stage vs plain tar copy."""
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "curation"))
    from index_factory import Img, entries_table
    from index_factory import make_index as make_small_index

    rng = np.random.default_rng(0)
    base = [rng.integers(0, 256, (160, 160, 3), dtype=np.uint8) for _ in range(16)]
    imgs = []
    for i in range(n_images):
        buf = io.BytesIO()
        Image.fromarray(np.roll(base[i % 16], i, axis=0)).save(buf, format="JPEG", quality=95)
        imgs.append(Img(f"u{i:07d}", [(f"photo {i}", "en", [i % 100])], buf.getvalue()))
    ent = entries_table({"en": 100})
    built = make_small_index(tmp, imgs, ent, kind="webdataset", sources=max(1, n_images // 1000), part_rows=50_000)
    tars = sorted(built.pool.glob("*.tar"))
    image_mb = sum(len(im.data) for im in imgs) / 1e6
    del imgs

    def plain_copy():
        with tarfile.open(tmp / "copy.tar", "w") as out:
            for src in tars:
                with tarfile.open(src, "r|") as tar:
                    for m in tar:
                        if m.name.endswith(".png") or m.name.endswith(".jpg"):
                            out.addfile(m, tar.extractfile(m))
    _, t_copy = timed(plain_copy)
    _, t_cp = timed(lambda: [shutil.copyfile(s, tmp / f"cp-{s.name}") for s in tars])
    t_cp = max(t_cp, 1e-3)
    spent = []
    real = shards.write_group

    def timed_group(*a, **k):
        out, s = timed(real, *a, **k)
        spent.append(s)
        return out
    shards.write_group = timed_group
    try:
        _, t_all = timed(balance_run.run_balance, str(built.index), str(tmp / "CUR"), t=1e12, shard_size=1000,
                         workers=1)
    finally:
        shards.write_group = real
    return {"images": n_images, "image_MB": image_mb, "shard_write_MB_s": image_mb / sum(spent),
            "plain_tarfile_copy_MB_s": image_mb / t_copy, "raw_file_copy_MB_s": image_mb / t_cp,
            "ratio_vs_tarfile_copy": t_copy / sum(spent), "whole_run_s": t_all}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["decisions", "shards", "rss"])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--t", type=float, default=20000)
    ap.add_argument("--tmp", default=None, help="scratch folder (default: a temp dir, removed)")
    a = ap.parse_args()
    tmp = Path(a.tmp or tempfile.mkdtemp(prefix="bench_balance_"))
    try:
        if a.what == "decisions":
            res = bench_decisions(a.rows, a.t, tmp)
        elif a.what == "shards":
            res = bench_shards(a.images, tmp)
        else:
            index = make_index(tmp / "INDEX", a.rows)
            code = ("import resource, sys; from curation.balance_run import run_balance; "
                    f"run_balance({str(index)!r}, {str(tmp / 'CUR')!r}, t={a.t}, workers=1); "
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            res = {"rows": a.rows, "index_MB": sum(p.stat().st_size for p in (index / "matches").iterdir()) / 1e6,
                   "peak_rss_MB (balance process)": int(proc.stderr.strip().splitlines()[-1]) / 1024,
                   "seconds": time.perf_counter() - t0}
        for k, v in res.items():
            print(f"{k}: {v:,.1f}" if isinstance(v, float) else f"{k}: {v}")
    finally:
        if a.tmp is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
