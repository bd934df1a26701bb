"""Benchmark `curate metadata build --langs all` (issue 3 target: < 2 minutes on 2 cores),
`load_entries` (what build-index pays to read and validate META), `add` of a 500k-entry
MetaCLIP 1-style metadata.json, and `build-wiki` on a generated .xml.bz2 dump whose articles are
real English sentences (WordNet glosses).

    .venv/bin/python benchmarks/metadata_build.py [--langs all] [--out DIR] [--wiki-pages 5000]
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "metadata"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="all", help="languages to build (default all)")
    parser.add_argument("--out", default=None, help="META folder (default: a temporary folder, removed after)")
    parser.add_argument("--wiki-pages", type=int, default=5000, help="articles in the generated dump (0: skip)")
    args = parser.parse_args()

    from metadata.packaged import build
    from metadata.store import load_entries

    work = Path(tempfile.mkdtemp(prefix="bench-meta-inputs-"))
    try:
        bench_add(work)
        if args.wiki_pages:
            bench_wiki(work, args.wiki_pages)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-meta-")) / "META"
    try:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        result = build(args.langs, str(out), progress=False)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        t1 = time.perf_counter()
        table = load_entries(out)
        load_s = time.perf_counter() - t1
        size_mb = (out / "entries.parquet").stat().st_size / 2**20
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"build --langs {args.langs}: {len(result['langs'])} languages, {table.num_rows} entries, "
              f"{build_s:.1f} s wall ({build_cpu:.1f} s CPU), entries.parquet {size_mb:.1f} MiB, "
              f"peak RSS {peak_mb:.0f} MiB")
        print(f"load_entries (read + validate): {load_s:.2f} s")
    finally:
        if not args.out:
            shutil.rmtree(out.parent, ignore_errors=True)


def bench_add(work: Path) -> None:
    from metadata import wordnet
    from metadata.importers import add

    lemmas = list(dict.fromkeys(wordnet.lemmas("en")[0]))
    entries = (lemmas + [f"{x} {k}" for k in range(1, 4) for x in lemmas])[:500_000]  # MetaCLIP 1 has 500k
    (work / "metadata.json").write_text(json.dumps(entries))
    t0, cpu0 = time.perf_counter(), time.process_time()
    summary, _, _ = add(str(work / "M_add"), "en", str(work / "metadata.json"), source="metaclip1")
    print(f"add metadata.json: {summary.n_added} entries, {time.perf_counter() - t0:.1f} s wall "
          f"({time.process_time() - cpu0:.1f} s CPU)")


def bench_wiki(work: Path, pages: int) -> None:
    from metadata import wordnet
    from metadata.wiki import build_wiki
    from wiki_dump_factory import write_dump

    glosses = wordnet.glosses("en")
    rng = random.Random(0)
    titles = list(dict.fromkeys(wordnet.lemmas("en")[0]))
    dump = write_dump(work / "enwiki.xml.bz2", "en", [
        {"title": titles[i].capitalize(), "text": "\n".join(rng.sample(glosses, 20))} for i in range(pages)],
        compress=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = build_wiki(str(dump), "en", str(work / "M_wiki"), pmi_threshold=10.0, use_wordnet=False,
                        force_english=True, progress=False)
    s = result["stats"]
    print(f"build-wiki: {s['pages']} articles, {s['tokens']} tokens ({dump.stat().st_size / 2**20:.1f} MiB bz2), "
          f"{result['summary'].n_added} entries, {time.perf_counter() - t0:.1f} s wall "
          f"({time.process_time() - cpu0:.1f} s CPU)")


if __name__ == "__main__":
    main()
