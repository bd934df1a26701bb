"""Benchmark curation on object storage: build-index and balance with pool, INDEX and CURATED in a bucket of a
local S3 server (`rclone serve s3` on 127.0.0.1) vs the same run on local disk, side by side in one run;
peak RSS (driver + Ray workers) from S3 at 1x and 4x pool size.

    .venv/bin/python benchmarks/bench_storage.py --samples 4000 --json storage.json

Pool: WebDataset tars of --samples samples (~12 KB JPEG, an alt-text with 1-3 entries of 2 x 200 entries, a
json with uid/url/lang), --files tars. Every command runs as a child process (`curate …`, --workers 1) so the
two sides see the same startup costs; the S3 side reads META locally (tiny) and everything else from the bucket.
Throughput = pool texts (build-index) or kept images (balance) per wall second.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build_index import PeakRSS, write_meta  # noqa: E402
from core import storage

CURATE = str(Path(sys.executable).with_name("curate"))
RCLONE = shutil.which("rclone") or str(Path(sys.executable).with_name("rclone"))
KEY, SECRET = "bench-key", "bench-secret-0123456789"
LANGS = {"en": 200, "de": 200}


def jpegs(n: int = 64) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def write_pool(folder: Path, samples: int, files: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng, imgs = np.random.default_rng(1), jpegs()
    per = -(-samples // files)
    for f in range(files):
        with tarfile.open(folder / f"{f:05d}.tar", "w") as tar:
            for i in range(f * per, min((f + 1) * per, samples)):
                lang = "en" if i % 3 else "de"
                words = [f"{lang}w{int(w)}" for w in np.minimum(rng.zipf(1.3, rng.integers(1, 4)), 199)]
                meta = {"uid": f"u{i:09d}", "url": f"http://img.bench/{i}.jpg", "lang": lang}
                for name, data in ((f"s{i:09d}.jpg", imgs[i % len(imgs)]),
                                   (f"s{i:09d}.txt", ("photo of " + " ".join(words)).encode()),
                                   (f"s{i:09d}.json", json.dumps(meta).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return folder


def start_s3(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([RCLONE, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}", "--auth-key",
                             f"{KEY},{SECRET}", "--config", "/dev/null"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("rclone serve s3 did not start")


def run(cmd: list[str]) -> dict:
    t0 = time.time()
    proc = subprocess.Popen([CURATE, *cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rss = PeakRSS(proc.pid)
    out, _ = proc.communicate()
    wall = time.time() - t0
    rss.stop()
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): curate {' '.join(cmd)}")
    return {"wall_s": wall, "peak_rss_mib": rss.total / 2**20, "driver_rss_mib": rss.driver / 2**20,
            "summary": out.strip().splitlines()[-1]}


def pipeline(pool: str, meta: str, index: str, cur: str) -> dict:
    bi = run(["build-index", "--pool", pool, "--metadata", meta, "--out", index, "--lid", "column:lang",
              "--workers", "1"])
    ba = run(["balance", "--index", index, "--out", cur, "--t", "50", "--shard-size", "1000", "--workers", "1"])
    texts = storage.read_json(storage.join(index, "manifest.json"))["totals"]["rows_in"]
    kept = storage.read_json(storage.join(cur, "stats.json"))["totals"]["written"]
    bi["texts_per_s"], ba["images_per_s"] = texts / bi["wall_s"], kept / ba["wall_s"]
    return {"build_index": bi, "balance": ba}


def upload(local: Path, url: str) -> None:
    for p in sorted(local.iterdir()):
        storage.write_bytes(storage.join(url, p.name), p.read_bytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_storage_"))
    (work / "s3").mkdir()
    server, endpoint = start_s3(work / "s3")
    os.environ.update({"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ENDPOINT_URL": endpoint,
                       "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        storage.filesystem("s3://bench")[0].mkdir("bench")
        meta = write_meta(work / "META", [f"{lang}w{i}" for lang, n in LANGS.items() for i in range(n)],
                          [lang for lang, n in LANGS.items() for _ in range(n)])
        result = {"samples": args.samples, "files": args.files}
        for scale in (1, 4):
            pool = write_pool(work / f"pool{scale}", args.samples * scale, args.files * scale)
            upload(pool, f"s3://bench/pool{scale}")
            if scale == 1:
                result["local"] = pipeline(str(pool), str(meta), str(work / "INDEX"), str(work / "CUR"))
            result[f"s3_{scale}x"] = pipeline(f"s3://bench/pool{scale}", str(meta), f"s3://bench/INDEX{scale}",
                                              f"s3://bench/CUR{scale}")
            shutil.rmtree(pool)
        loc, s3, s3x4 = result["local"], result["s3_1x"], result["s3_4x"]
        result["ratios"] = {
            "build_index_s3_vs_local": s3["build_index"]["texts_per_s"] / loc["build_index"]["texts_per_s"],
            "balance_s3_vs_local": s3["balance"]["images_per_s"] / loc["balance"]["images_per_s"],
            "build_index_rss_4x_vs_1x": s3x4["build_index"]["peak_rss_mib"] / s3["build_index"]["peak_rss_mib"],
            "balance_rss_4x_vs_1x": s3x4["balance"]["peak_rss_mib"] / s3["balance"]["peak_rss_mib"]}
        for name in ("local", "s3_1x", "s3_4x"):
            r = result[name]
            print(f"{name:6s} build-index {r['build_index']['wall_s']:6.1f}s {r['build_index']['texts_per_s']:8.0f} "
                  f"texts/s rss {r['build_index']['peak_rss_mib']:6.0f} MiB | balance {r['balance']['wall_s']:6.1f}s "
                  f"{r['balance']['images_per_s']:7.0f} images/s rss {r['balance']['peak_rss_mib']:6.0f} MiB")
        print(json.dumps(result["ratios"], indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
