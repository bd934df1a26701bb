"""Matching throughput per core: MetaCLIP's reference loop vs each Matcher backend, identical output checked.

    .venv/bin/python benchmarks/bench_match.py [--entries 500000] [--texts 50000] [--dup-rate 0.1]

Two metadata sets (benchmarks/corpora.py): 500k English entries with English alt-texts, and a
CJK-heavy zh/ja/ko/th metadata with alt-texts in those languages (each text matched against its
language's entries, as build-index does). Rates are texts per CPU-second of this process (one
thread: RAYON/OMP threads pinned to 1), best of --repeat runs, so other load on the machine
inflates them less than wall time would. Prints a markdown table.
"""
from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import corpora  # noqa: E402
from matching.matcher import BACKENDS, Matcher, reference_automaton, reference_loop


def cpu_seconds(fn, repeat: int) -> tuple[float, object]:
    """Best CPU time of `repeat` calls of fn, and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def build_and_match(build_one, match_one, groups: dict, repeat: int) -> tuple[float, float, dict]:
    """CPU seconds to build one matcher per language (build_one(entries, ids)), best CPU seconds to match every
    language's texts with its matcher (match_one(matcher, texts)), and the matches per language. The matchers
    live only in this call, so each method's are freed before the next one's are built."""
    t = time.process_time()
    matchers = {lang: build_one(e, ids) for lang, (e, ids, _) in groups.items()}
    build = time.process_time() - t
    sec, out = cpu_seconds(lambda: {lang: match_one(matchers[lang], tx) for lang, (_, _, tx) in groups.items()},
                           repeat)
    return build, sec, out


def bench_corpus(name: str, corpus: corpora.Corpus, backends: list[str], repeat: int, compat: bool) -> list[dict]:
    """Rows of the table for one corpus: the reference, then each backend."""
    groups = corpus.by_lang()
    n_texts = len(corpus.texts)
    rows = []
    build, ref_time, ref = build_and_match(lambda e, ids: reference_automaton(e, ids, compat), reference_loop,
                                           groups, repeat)
    matches = sum(len(x) for lists in ref.values() for x in lists) / max(n_texts, 1)
    rows.append(dict(corpus=name, method="reference loop (MetaCLIP)", build=build, rate=n_texts / ref_time,
                     speedup=1.0, identical="oracle", matches=matches))
    for backend in backends:
        build, sec, got = build_and_match(lambda e, ids: Matcher(e, ids, compat=compat, backend=backend),
                                          lambda m, tx: m.match(tx), groups, repeat)
        same = all(got[lang].lists() == ref[lang] for lang in groups)
        rows.append(dict(corpus=name, method=f"Matcher backend={backend}", build=build, rate=n_texts / sec,
                         speedup=ref_time / sec, identical="yes" if same else "NO", matches=matches))
        print(f"  {name} {backend}: {n_texts / sec:,.0f} texts/s ({ref_time / sec:.1f}x), identical={same}",
              file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=500_000, help="metadata entries per corpus")
    ap.add_argument("--texts", type=int, default=50_000, help="alt-texts per corpus")
    ap.add_argument("--dup-rate", type=float, default=0.1, help="share of alt-texts that repeat an earlier one")
    ap.add_argument("--corpus", default="en,cjk", help="comma list of en, cjk")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma list of matcher backends")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per method (best is reported)")
    ap.add_argument("--compat", action="store_true", help="MetaCLIP-compatible padding (kana not no-space)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows = []
    for name in args.corpus.split(","):
        t = time.time()
        build = {"en": corpora.english, "cjk": corpora.cjk}[name]
        corpus = build(args.entries, args.texts, seed=args.seed, dup_rate=args.dup_rate)
        print(f"{name}: {len(corpus.entries):,} entries, {len(corpus.texts):,} texts "
              f"(generated in {time.time() - t:.0f}s)", file=sys.stderr, flush=True)
        rows += bench_corpus(name, corpus, args.backends.split(","), args.repeat, args.compat)
    print(f"\n{args.entries:,} entries, {args.texts:,} texts per corpus, dup-rate {args.dup_rate}, "
          f"{'compat' if args.compat else 'fixed'} mode, best of {args.repeat}, one thread\n")
    print("| metadata | method | build (CPU s) | texts/s per core | vs reference | identical sets | matches/text |")
    print("|---|---|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['corpus']} | {r['method']} | {r['build']:.1f} | {r['rate']:,.0f} | {r['speedup']:.1f}x "
              f"| {r['identical']} | {r['matches']:.1f} |")
    return 0 if all(r["identical"] != "NO" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
