"""Benchmark the whole `curate build-index` against MetaCLIP 2's reference loop, measured in the same run.

Default (issue 15): a web-like multilingual pool (benchmarks/corpora.web_pool: 3,000,000 rows over 16
metadata languages plus rows in languages the metadata lacks, 1-4 alt-texts per image sharing a uid and
url, repeated and null/blank uids, and the web's messy texts: empty, whitespace-only, NBSP/U+3000
padding, control characters, nulls, 5k-40k-character texts) against a 1.44M-entry metadata (500k
English, 500k zh/ja/ko/th, 40k for each of 11 other languages), `--lid column:lang`:

    nice -n 10 .venv/bin/python benchmarks/bench_build_index.py                   # 3M rows, 1 and 2 workers
    nice -n 10 .venv/bin/python benchmarks/bench_build_index.py --texts 300000    # a smaller pool

Measured, each as its own subprocess, one after another:
- the reference: MetaCLIP 2's substr_matching loop with its Parquet read (read text + lang, `str.strip()`,
  one pyahocorasick automaton per language built from META, one `iter` of the spaced text per row, a set
  per text), from interpreter start to the end of the loop;
- `curate build-index --workers N` for each N (1 runs in-process, 2 on processes forked from the command).
Reported: wall s, CPU s (the process tree's user+system, sampled every 0.2 s with psutil; exact via
getrusage for single-process runs), end-to-end texts/s per core (texts / CPU s, start-up included) and
its ratio to the reference, steady texts/s per core (the parts after each worker's first, which holds
the matcher builds: rows / the journal's per-part `cpu_s`; the reference: rows / the CPU s of its loop,
Parquet read included, after META load and automaton builds), texts/s of wall time and its ratio to 1
worker, critical-path CPU s (CPU outside the parts + the busiest worker's parts, from the journal's `pid`
and `cpu_s`: the wall time with a free core per process) and its ratio to 1 worker, start-up (command
start -> the first part starts, from the journal's `started_at`; for 1 worker also the process's CPU
seconds by then), matcher builds (wall s inside parts, all workers: 0 with forked workers, whose matchers
the driver builds before forking, within start-up) and peak PSS of the process tree (forked workers share
pages; PSS counts each once). On a shared machine the CPU-based rates are the ones to compare; wall rates
move with load. Every INDEX is checked against the reference: the same rows matched with the same entry ids, the
stripped text and language of each, and counts.parquet equal to the reference's counts.

`--corpus en cjk` runs the older single-corpus benchmark (English / CJK pools with a `lang` column, Ray
start included, 1x and 4x pool sizes), without the reference.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
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


def web_inputs(root: Path, n_rows: int, seed: int = 0) -> tuple[Path, Path]:
    """META and pool of the web benchmark, generated once and reused (generation takes ~1 min per 1M rows)."""
    meta, pool = root / f"web-meta-{seed}", root / f"web-pool-{n_rows}-{seed}" / "pool.parquet"
    if not (meta / "manifest.json").exists():
        write_meta(meta, *corpora.web_entries(seed))
    if not pool.exists():
        t0 = time.time()
        table = corpora.web_pool(n_rows, seed)
        pool.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, str(pool) + ".tmp", row_group_size=50_000)
        os.replace(str(pool) + ".tmp", pool)
        print(f"[web] pool of {n_rows:,} rows generated in {time.time() - t0:.0f}s", flush=True)
    return meta, pool


class PeakRSS:
    """Polls a process and all its descendants: peak PSS (driver, tree) and the tree's CPU seconds."""

    def __init__(self, pid: int) -> None:
        self.root, self.driver, self.total = psutil.Process(pid), 0, 0
        self.cpu: dict[int, float] = {}  # pid -> last seen user+system seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            rss = {}
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    rss[p.pid] = p.memory_full_info().pss  # forked workers share pages: RSS would count them twice
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            if rss:
                self.driver = max(self.driver, rss.get(self.root.pid, 0))
                self.total = max(self.total, sum(rss.values()))
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_build_index(pool: Path, meta: Path, out: Path, workers: int, backend: str, part_size: int,
                    extra: tuple[str, ...] = ()) -> dict:
    cmd = [CURATE, "build-index", "--pool", str(pool), "--metadata", str(meta), "--out", str(out),
           "--workers", str(workers), "--backend", backend, "--part-size", str(part_size), "--overwrite", *extra]
    cpu0, t0 = children_cpu(), time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rss = PeakRSS(proc.pid)
    stdout, _ = proc.communicate()
    wall, cpu_exact = time.time() - t0, children_cpu() - cpu0
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
    # steady per core: parts after each worker's first (matcher builds happen in the first), per CPU second
    steady_cpu = sum(r["rows_in"] for r in rest) / sum(r["cpu_s"] for r in rest) if rest else float("nan")
    # one process (--workers 1): getrusage is exact; Ray's processes are not all our children: sampled
    cpu = cpu_exact if workers == 1 else max(rss.cpu_seconds, cpu_exact)
    return {"rows": rows, "matched": manifest["totals"]["matched"], "wall_s": wall, "cpu_s": cpu,
            "texts_per_s": rows / wall, "texts_per_cpu_s": rows / cpu, "steady_texts_per_s": steady,
            "steady_texts_per_cpu_s": steady_cpu,
            "startup_s": min(r.get("started_at", np.nan) for r in recs) - t0,
            # CPU of the command's process before its first part (in-process runs only: 1 worker)
            "startup_cpu_s": min(recs, key=lambda r: r["started_at"])["cpu_at_start"] if workers == 1 else np.nan,
            "build_s": sum(r.get("build_s", 0.0) for r in recs),
            "critical_cpu_s": critical_cpu(recs, cpu),
            "driver_rss_mib": rss.driver / 2**20, "total_rss_mib": rss.total / 2**20,
            "backend": manifest["backend"], "summary": stdout.strip().splitlines()[-1]}


def critical_cpu(recs: list[dict], cpu: float) -> float:
    """CPU seconds on the run's critical path: all CPU outside the parts (start-up, matcher builds before
    forking, final counts, journaling: counted as serial) plus the busiest worker's parts, i.e. the wall time
    the run would take with a free core per process (a derived figure, for a machine shared with others)."""
    per_worker: dict = {}
    for r in recs:
        per_worker[r.get("pid")] = per_worker.get(r.get("pid"), 0.0) + r["cpu_s"]
    return cpu - sum(per_worker.values()) + max(per_worker.values())


def reference_main(pool: str, meta: str, out: str) -> None:
    """MetaCLIP 2's loop over the pool (run as its own process by `reference_run`): reads META and the pool,
    one automaton per language, one `iter` per stripped, spaced text; writes the timings as JSON on stdout
    and its matches (row, entry_ids) to `out` after the clock stops."""
    wall0 = time.time()
    from curation.build_index_run import load_entries
    from matching.matcher import reference_automaton, reference_loop

    entries = load_entries(meta)[0]
    t0 = time.process_time()
    automata = {}
    langs = entries.column("lang")
    for lang in pc.unique(langs).to_pylist():
        t = entries.filter(pc.equal(langs, lang))
        automata[lang] = reference_automaton(t.column("entry").to_pylist(), t.column("entry_id").to_pylist())
    loop0 = time.process_time()
    build = loop0 - t0
    table = pq.read_table(pool, columns=["text", "lang"])
    found_rows, found_ids = [], []
    for row, (text, lang) in enumerate(zip(table.column("text").to_pylist(), table.column("lang").to_pylist())):
        text = text.strip() if text else ""
        if text and lang in automata:
            ids = reference_loop(automata[lang], [text])[0]
            if ids:
                found_rows.append(row)
                found_ids.append(ids)
    cpu, wall = time.process_time(), time.time() - wall0
    loop = cpu - loop0  # Parquet read, strip, matching: the reference's steady state
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pq.write_table(pa.table({"row": pa.array(found_rows, pa.int64()),
                             "entry_ids": pa.array(found_ids, pa.list_(pa.int32()))}), out)
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "build_s": build, "loop_s": loop, "rows": table.num_rows,
                      "rss": rss}))


def reference_run(pool: Path, meta: Path, out: Path) -> dict:
    t0 = time.time()
    proc = subprocess.run([sys.executable, __file__, "--reference-run", str(pool), str(meta), str(out)],
                          check=True, capture_output=True, text=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = r["rows"]
    return {"rows": rows, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "texts_per_s": rows / r["wall_s"],
            "texts_per_cpu_s": rows / r["cpu_s"], "build_s": r["build_s"], "total_rss_mib": r["rss"] / 2**20,
            "driver_rss_mib": r["rss"] / 2**20, "startup_s": float("nan"), "process_s": time.time() - t0,
            "steady_texts_per_s": float("nan"), "steady_texts_per_cpu_s": rows / r["loop_s"],
            "startup_cpu_s": float("nan")}


def verify(index: Path, ref_matches: Path, pool: Path) -> str:
    """'identical' when the INDEX has exactly the reference's matched rows and entry ids (and the stripped
    text and language of each, counts.parquet = the reference's counts); else what differs."""
    from curation.index import read_matches

    got = read_matches(index).sort_by("row")
    ref = pq.read_table(ref_matches)
    if got.num_rows != ref.num_rows or not got.column("row").equals(ref.column("row")):
        return f"DIFFERENT rows: {got.num_rows} matched vs the reference's {ref.num_rows}"
    if not got.column("entry_ids").cast(pa.list_(pa.int32())).equals(ref.column("entry_ids")):
        return "DIFFERENT entry ids"
    src = pq.read_table(pool, columns=["text", "lang"]).take(ref.column("row"))
    if got.column("text").to_pylist() != [t.strip() for t in src.column("text").to_pylist()] \
            or not got.column("lang").equals(src.column("lang")):
        return "DIFFERENT text or lang"
    counts = pq.read_table(index / "counts.parquet").column("count").to_numpy()
    ids = pc.list_flatten(ref.column("entry_ids")).to_numpy()
    if not np.array_equal(counts, np.bincount(ids, minlength=len(counts))):
        return "DIFFERENT counts"
    return "identical"


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def web_benchmark(args: argparse.Namespace) -> None:
    root = Path(args.root)
    n = args.texts or 3_000_000
    meta, pool = web_inputs(root, n)
    runs = []
    print(f"[web] {n:,} rows; load average before: {load_average()}", flush=True)
    if not args.no_reference:
        r = reference_run(pool, meta, root / f"web-ref-{n}.parquet")
        runs.append(("reference loop (MetaCLIP 2, Parquet read)", 1, r, "oracle"))
        print(f"[web] reference: {r['cpu_s']:.1f} CPU s, {r['texts_per_cpu_s']:,.0f} texts/CPU-s; "
              f"load {load_average()}", flush=True)
    extra = ("--lid", "column:lang", "--uid-column", "uid", "--url-column", "url")
    for w in args.workers:
        out = root / f"web-index-{n}-{w}"
        r = run_build_index(pool, meta, out, w, args.backend, args.part_size or 50_000, extra)
        same = verify(out, root / f"web-ref-{n}.parquet", pool) if not args.no_reference else "not checked"
        runs.append((f"curate build-index --workers {w}", w, r, same))
        print(f"[web] {w} worker(s): {r['wall_s']:.1f}s wall, {r['cpu_s']:.1f} CPU s, start-up {r['startup_s']:.2f}s, "
              f"{same}; load {load_average()}", flush=True)
    ref = runs[0][2] if not args.no_reference else None
    one = next((r for _n, w, r, same in runs if w == 1 and same != "oracle"), None)
    print(f"\n{n:,} rows, load average after: {load_average()}\n")
    print("| run | wall s | CPU s | end-to-end texts/s per core (CPU) | vs reference | steady texts/s per core | "
          "vs reference | texts/s wall | wall vs 1 worker | critical-path CPU s (vs 1 worker) | start-up s (CPU s) | "
          "matcher builds s | peak PSS | output |")
    print("|---|" + "---:|" * 12 + "---|")
    for name, w, r, same in runs:
        vs = f"**{r['texts_per_cpu_s'] / ref['texts_per_cpu_s']:.2f}x**" if ref else "-"
        vs_steady = f"**{r['steady_texts_per_cpu_s'] / ref['steady_texts_per_cpu_s']:.2f}x**" if ref else "-"
        scale = f"{r['texts_per_s'] / one['texts_per_s']:.2f}x" if one and same != "oracle" else "-"
        crit = f"{r['critical_cpu_s']:.1f} ({one['critical_cpu_s'] / r['critical_cpu_s']:.2f}x)" \
            if one and same != "oracle" else "-"
        print(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['texts_per_cpu_s']:,.0f} | {vs} | "
              f"{r['steady_texts_per_cpu_s']:,.0f} | {vs_steady} | {r['texts_per_s']:,.0f} | {scale} | {crit} | "
              f"{r['startup_s']:.2f} ({r['startup_cpu_s']:.2f}) | {r['build_s']:.1f} | {r['total_rss_mib']:,.0f} MiB | "
              f"{same} |")


def time_lid(texts: list[str]) -> float:
    from curation.lid import Detector

    d = Detector()
    d.detect(texts[:100])
    t0 = time.time()
    d.detect(texts)
    return len(texts) / (time.time() - t0)


def corpus_benchmark(args: argparse.Namespace) -> None:
    root = Path(args.root)
    rows = []
    for name in args.corpus:
        n_max = (args.texts or 100_000) * max(args.scales)
        t0 = time.time()
        corpus = (corpora.english if name == "en" else corpora.cjk)(n_entries=args.entries, n_texts=n_max)
        meta = write_meta(root / f"{name}-meta-{args.entries}", corpus.entries, corpus.langs)
        print(f"[{name}] corpus + META ready in {time.time() - t0:.0f}s; lid.176 alone: "
              f"{time_lid(corpus.texts[:50_000]):,.0f} texts/s", flush=True)
        for scale in args.scales:
            n = (args.texts or 100_000) * scale
            pool = write_pool(root / f"{name}-pool-{n}", corpus.texts[:n], corpus.text_langs[:n])
            for w in args.workers:
                r = run_build_index(pool, meta, root / f"{name}-index-{n}-{w}", w, args.backend,
                                    args.part_size or 20_000)
                rows.append((name, n, w, r))
                print(f"[{name}] {n:,} texts, {w} worker(s): {r['wall_s']:.1f}s wall, {r['texts_per_s']:,.0f} texts/s "
                      f"end-to-end, {r['steady_texts_per_s']:,.0f} texts/s steady, RSS driver "
                      f"{r['driver_rss_mib']:.0f} MiB / total {r['total_rss_mib']:.0f} MiB ({r['backend']})",
                      flush=True)
    print("\n| corpus | texts | workers | backend | wall s | texts/s end-to-end | texts/s steady | peak RSS driver | "
          "peak RSS total |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, w, r in rows:
        print(f"| {name} | {n:,} | {w} | {r['backend']} | {r['wall_s']:.1f} | {r['texts_per_s']:,.0f} | "
              f"{r['steady_texts_per_s']:,.0f} | {r['driver_rss_mib']:.0f} MiB | {r['total_rss_mib']:.0f} MiB |")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--reference-run":
        return reference_main(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", default=["web"], choices=["web", "en", "cjk"])
    ap.add_argument("--texts", type=int, default=None, help="pool rows (web: 3,000,000; en/cjk: 100,000 at 1x)")
    ap.add_argument("--entries", type=int, default=500_000, help="en/cjk: metadata entries")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4], help="en/cjk: pool sizes (multiples of --texts)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--part-size", type=int, default=None, help="web: 50,000; en/cjk: 20,000")
    ap.add_argument("--no-reference", action="store_true", help="web: skip the reference loop and the output check")
    ap.add_argument("--root", default="/tmp/bench_build_index")
    args = ap.parse_args()
    if "web" in args.corpus:
        web_benchmark(args)
    args.corpus = [c for c in args.corpus if c != "web"]
    if args.corpus:
        corpus_benchmark(args)


if __name__ == "__main__":
    main()
