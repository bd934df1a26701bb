"""Where one build-index worker's part spends its time, per row, next to the reference loop in the same process.

Pool: English + CJK alt-texts (benchmarks/corpora.py, 5 languages, mixed), a `lang` column, a `uid` column
with a third of the rows null (so uids are derived from the url), a `url` column and the messy text
classes of the web (empty, whitespace-only, NBSP/U+3000 padding, control characters). One part, in
process, CPU time (`time.process_time`), cProfile for the split:

    .venv/bin/python benchmarks/profile_part.py --texts 300000 --entries 200000
    .venv/bin/python benchmarks/profile_part.py --corpus web --texts 1000000   # bench_build_index's web pool

Reference = MetaCLIP's loop on the same rows: Parquet read, `str.strip()`, one automaton per language,
one `iter` per text; its automaton build is reported apart, like the worker's start-up.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpora  # noqa: E402
from bench_build_index import web_inputs, write_meta  # noqa: E402

MESSY = ["", "   ", "\u00a0", "\u3000logo\u3000", "\u00a0photo of a cat\u00a0", "\x00\x01 icon", "\t\n", None]

STAGES = {  # cProfile function name -> stage (cumulative time)
    "read_part": "Parquet read + batch columns (pool.read_part)",
    "match": "matcher (Matcher.match / match_array: dedup, spacing, C walk)",
    "match_array": "matcher (Matcher.match / match_array: dedup, spacing, C walk)",
    "languages": "language routing (PartProcessor.languages / language_codes)",
    "language_codes": "language routing (PartProcessor.languages / language_codes)",
    "_matches_table": "matches table incl. uid derivation",
    "write_part": "Parquet + npz writing (write_part)",
}


def make_pool(folder: Path, n_texts: int, n_entries: int) -> tuple[Path, Path]:
    """META (English + CJK entries) and a messy pool Parquet with text/lang/uid/url; reused when present."""
    meta, pool = folder / f"meta-{n_entries}", folder / f"pool-{n_texts}.parquet"
    if pool.exists() and (meta / "manifest.json").exists():
        return meta, pool
    en = corpora.english(n_entries=n_entries, n_texts=n_texts // 2)
    cjk = corpora.cjk(n_entries=n_entries, n_texts=n_texts - n_texts // 2)
    write_meta(meta, en.entries + cjk.entries, en.langs + cjk.langs)
    rng = np.random.default_rng(7)
    texts, langs = np.array(en.texts + cjk.texts, dtype=object), np.array(en.text_langs + cjk.text_langs, dtype=object)
    order = rng.permutation(len(texts))
    texts, langs = texts[order], langs[order]
    messy = rng.random(len(texts)) < 0.03
    texts[messy] = rng.choice(np.array(MESSY, dtype=object), int(messy.sum()))
    uids = np.array([f"{i:032x}" for i in range(len(texts))], dtype=object)
    uids[rng.random(len(texts)) < 0.33] = None
    urls = [f"https://example.com/img/{i % (len(texts) // 3)}.jpg" for i in range(len(texts))]
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": pa.array(texts.tolist(), pa.string()), "lang": langs.tolist(),
                             "uid": pa.array(uids.tolist(), pa.string()), "url": urls}), pool,
                   row_group_size=20_000)
    return meta, pool


def reference(pool: Path, entries: pa.Table) -> tuple[float, float]:
    """(automaton build CPU s, loop CPU s) of MetaCLIP's loop over the pool, language by language."""
    from matching.matcher import reference_automaton, reference_loop

    t0 = time.process_time()
    automata = {}
    for lang in sorted(set(entries.column("lang").to_pylist())):
        t = entries.filter(pa.compute.equal(entries.column("lang"), lang))
        automata[lang] = reference_automaton(t.column("entry").to_pylist(), t.column("entry_id").to_pylist())
    t1 = time.process_time()
    table = pq.read_table(pool, columns=["text", "lang"])
    for text, lang in zip(table.column("text").to_pylist(), table.column("lang").to_pylist()):
        text = text.strip() if text else ""
        if text and lang in automata:
            reference_loop(automata[lang], [text])
    return t1 - t0, time.process_time() - t1


def worker(pool: Path, meta: str, out: Path, prof: cProfile.Profile) -> tuple[float, float, int]:
    """(start-up CPU s, part CPU s, rows) of one in-process worker over the whole pool as one part."""
    from curation.build_index import PartProcessor
    from curation.build_index_run import plan
    from curation.index import write_part

    t0 = time.process_time()
    p = plan([str(pool)], meta, lid="column:lang", compat=False, text_column=None, uid_column="uid",
             url_column="url", image_column=None, backend="auto", part_size=10**9)
    proc = PartProcessor(p["entries"], p["lid"], compat=False, backend="auto", cols=p["cols"],
                         fingerprint=p["identity"]["metadata"]["fingerprint"])
    for lang in proc.meta_langs:
        proc.matcher(lang)
    t1 = time.process_time()
    part = p["parts"][0]
    prof.enable()
    result = proc.process_part(part)
    write_part(out, part.part, result.matches, result.counts)
    prof.disable()
    return t1 - t0, time.process_time() - t1, result.rows_in


def cli_run(pool: Path, meta: Path, out: Path) -> tuple[float, float]:
    """(wall s, CPU s) of the whole `curate build-index --workers 1` (a subprocess; start-up included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    subprocess.run([str(Path(sys.executable).parent / "curate"), "build-index", "--pool", str(pool), "--metadata",
                    str(meta), "--out", str(out), "--lid", "column:lang", "--uid-column", "uid", "--url-column",
                    "url", "--workers", "1", "--part-size", "50000", "--overwrite"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, after = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def stage_table(prof: cProfile.Profile, rows: int, total: float) -> list[tuple[str, float]]:
    """µs per row of each stage (cProfile cumulative times, scaled to the unprofiled total)."""
    stats = pstats.Stats(prof).stats
    prof_total = sum(v[2] for v in stats.values())
    cum = {}
    for (_, _, name), (_, _, _, ct, _) in stats.items():
        if name in STAGES:
            cum[name] = max(cum.get(name, 0.0), ct)
    scale = total / prof_total if prof_total else 1.0
    us: dict[str, float] = {}
    for k, stage in STAGES.items():
        us[stage] = max(us.get(stage, 0.0), cum.get(k, 0.0) * scale * 1e6 / rows)  # old or new name
    out = list(us.items())
    out.append(("rest of process_batch (strip, grouping, to_pylist, counts)",
                total * 1e6 / rows - sum(v for _, v in out)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=300_000)
    ap.add_argument("--entries", type=int, default=200_000, help="entries per corpus (English, CJK)")
    ap.add_argument("--corpus", choices=["en+cjk", "web"], default="en+cjk",
                    help="web: bench_build_index's 16-language pool and 1.44M-entry META (--entries ignored)")
    ap.add_argument("--root", default="/tmp/profile_part")
    args = ap.parse_args()
    root = Path(args.root)
    if args.corpus == "web":
        meta, pool = web_inputs(Path("/tmp/bench_build_index"), args.texts)
        root = root / f"web-{args.texts}"
    else:
        meta, pool = make_pool(root, args.texts, args.entries)
    from curation.build_index_run import load_entries

    prof = cProfile.Profile()
    start, part_s, rows = worker(pool, str(meta), root / "index", prof)
    ref_build, ref_loop = reference(pool, load_entries(str(meta))[0])
    print(f"rows {rows:,}; worker start-up (plan, META, all automata) {start:.2f} CPU s; "
          f"reference automaton build {ref_build:.2f} CPU s")
    print("\n| stage | µs per row |\n|---|---:|")
    for name, us in stage_table(prof, rows, part_s):
        print(f"| {name} | {us:.2f} |")
    print(f"| **worker part total** | **{part_s * 1e6 / rows:.2f}** |")
    print(f"| reference loop (read, strip, iter per text) | {ref_loop * 1e6 / rows:.2f} |")
    wall, cpu = cli_run(pool, meta, root / "cli-index")
    ref = ref_loop + ref_build
    print(f"end to end, `curate build-index --workers 1` (subprocess, start-up included): {wall:.1f} s wall, "
          f"{cpu:.1f} CPU s = {rows / cpu:,.0f} texts/CPU-s; reference loop + build {rows / ref:,.0f} texts/CPU-s: "
          f"**{ref / cpu:.2f}x**")
    print(f"\nsteady: worker {rows / part_s:,.0f} texts/CPU-s, reference {rows / ref_loop:,.0f} texts/CPU-s, "
          f"**{ref_loop / part_s:.2f}x**; with start-up: {(ref_loop + ref_build) / (part_s + start):.2f}x")


if __name__ == "__main__":
    main()
