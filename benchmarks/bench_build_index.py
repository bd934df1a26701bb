"""Benchmark the whole `curate build-index` (Ray, LID from a column, matching, part writes): texts/s with
1 and 2 workers, and peak RSS (driver + Ray workers, summed over the process tree) at 1x and 4x pool size.
Since issue 15, 1 worker runs in the command's own process (no Ray); one worker's part is profiled
against the reference loop by benchmarks/profile_part.py.

Inputs come from benchmarks/corpora.py: 500k English entries with English alt-texts, and a CJK-heavy
(zh/ja/ko/th) metadata with alt-texts in those languages. The pool is a Parquet file with a `lang`
column (so `--lid auto` trusts it); fastText LID is timed separately, in-process.

    .venv/bin/python benchmarks/bench_build_index.py                       # en + cjk, 100k texts, 1x/4x
    .venv/bin/python benchmarks/bench_build_index.py --corpus en --texts 20000 --backend pyahocorasick

Reported per run: wall seconds (Ray start, automaton builds and all included), end-to-end texts/s,
steady texts/s (parts finished after each worker's first part, from the journal's timestamps), and peak
RSS of the driver and of the whole process tree.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpora  # noqa: E402

from metadata.store import Block, append  # noqa: E402

CURATE = str(Path(sys.executable).parent / "curate")


def write_meta(folder: Path, entries: list[str], langs: list[str]) -> Path:
    if (folder / "manifest.json").exists():
        return folder
    blocks: list[Block] = []
    for lang, e in zip(langs, entries):
        if not blocks or blocks[-1].lang != lang:
            blocks.append(Block(lang, "bench", []))
        blocks[-1].entries.append(e)
    append(folder, blocks, {"command": "bench_build_index"})
    return folder


def write_pool(folder: Path, texts: list[str], langs: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": texts, "lang": langs}), folder / "pool.parquet", row_group_size=20_000)
    return folder


class PeakRSS:
    """Polls the RSS of a process and all its descendants; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.root, self.driver, self.total = psutil.Process(pid), 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = {p.pid: p.memory_info().rss for p in procs if p.is_running()}
            except psutil.Error:
                rss = {}
            if rss:
                self.driver = max(self.driver, rss.get(self.root.pid, 0))
                self.total = max(self.total, sum(rss.values()))
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_build_index(pool: Path, meta: Path, out: Path, workers: int, backend: str, part_size: int) -> dict:
    cmd = [CURATE, "build-index", "--pool", str(pool), "--metadata", str(meta), "--out", str(out),
           "--workers", str(workers), "--backend", backend, "--part-size", str(part_size), "--overwrite"]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rss = PeakRSS(proc.pid)
    stdout, _ = proc.communicate()
    wall = time.time() - t0
    rss.stop()
    if proc.returncode != 0:
        raise SystemExit(f"build-index failed ({proc.returncode}): {' '.join(cmd)}")
    manifest = json.loads((out / "manifest.json").read_text())
    recs = sorted((json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()),
                  key=lambda r: r["finished_at"])
    rest = recs[workers:]
    span = recs[-1]["finished_at"] - recs[workers - 1]["finished_at"] if rest else 0.0
    steady = sum(r["rows_in"] for r in rest) / span if span > 0 else float("nan")
    rows = manifest["totals"]["rows_in"]
    return {"rows": rows, "matched": manifest["totals"]["matched"], "wall_s": wall, "texts_per_s": rows / wall,
            "steady_texts_per_s": steady, "driver_rss_mib": rss.driver / 2**20, "total_rss_mib": rss.total / 2**20,
            "backend": manifest["backend"], "summary": stdout.strip().splitlines()[-1]}


def time_lid(texts: list[str]) -> float:
    from curation.lid import Detector

    d = Detector()
    d.detect(texts[:100])
    t0 = time.time()
    d.detect(texts)
    return len(texts) / (time.time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", default=["en", "cjk"], choices=["en", "cjk"])
    ap.add_argument("--texts", type=int, default=100_000, help="texts at 1x pool size")
    ap.add_argument("--entries", type=int, default=500_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4], help="pool sizes (multiples of --texts)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--part-size", type=int, default=20_000)
    ap.add_argument("--root", default="/tmp/bench_build_index")
    args = ap.parse_args()
    root = Path(args.root)
    rows = []
    for name in args.corpus:
        n_max = args.texts * max(args.scales)
        t0 = time.time()
        corpus = (corpora.english if name == "en" else corpora.cjk)(n_entries=args.entries, n_texts=n_max)
        meta = write_meta(root / f"{name}-meta-{args.entries}", corpus.entries, corpus.langs)
        print(f"[{name}] corpus + META ready in {time.time() - t0:.0f}s; lid.176 alone: "
              f"{time_lid(corpus.texts[:50_000]):,.0f} texts/s", flush=True)
        for scale in args.scales:
            n = args.texts * scale
            pool = write_pool(root / f"{name}-pool-{n}", corpus.texts[:n], corpus.text_langs[:n])
            for w in args.workers:
                r = run_build_index(pool, meta, root / f"{name}-index-{n}-{w}", w, args.backend, args.part_size)
                rows.append((name, n, w, r))
                print(f"[{name}] {n:,} texts, {w} worker(s): {r['wall_s']:.1f}s wall, {r['texts_per_s']:,.0f} texts/s "
                      f"end-to-end, {r['steady_texts_per_s']:,.0f} texts/s steady, RSS driver "
                      f"{r['driver_rss_mib']:.0f} MiB / total {r['total_rss_mib']:.0f} MiB ({r['backend']})", flush=True)
    print("\n| corpus | texts | workers | backend | wall s | texts/s end-to-end | texts/s steady | peak RSS driver | peak RSS total |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, w, r in rows:
        print(f"| {name} | {n:,} | {w} | {r['backend']} | {r['wall_s']:.1f} | {r['texts_per_s']:,.0f} | "
              f"{r['steady_texts_per_s']:,.0f} | {r['driver_rss_mib']:.0f} MiB | {r['total_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
