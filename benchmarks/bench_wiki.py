"""Benchmark `build-wiki`'s bounded-memory counting: wall time, CPU time (article text MB per CPU
second: steadier than wall time on a shared machine) and peak RSS on a synthetic Zipfian dump, with
no spill (a budget larger than the counts) and with a small budget that forces many spilled runs.
Each configuration runs in its own process so that its peak RSS is its own; the entries.parquet
files must be byte-identical.

    .venv/bin/python benchmarks/bench_wiki.py [--mb 20] [--small-mib 8]
    .venv/bin/python benchmarks/bench_wiki.py --titles   # title counting: automaton walk vs Matcher
    .venv/bin/python benchmarks/bench_wiki.py --segmenters   # no-space languages' segmenters
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "metadata"))

CHILD = """
import json, resource, sys, time
from metadata.wiki import build_wiki
from metadata.wiki_counts import max_ngrams_for
dump, out, work, mib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = time.perf_counter()
r = build_wiki(dump, "en", out, pmi_threshold=8.0, use_wordnet=False, force_english=True, progress=False,
               max_ngrams=max_ngrams_for(mib), memory_limit_mib=max(mib, 64), tmp_dir=work)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": time.perf_counter() - t, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mib": usage.ru_maxrss / 1024, **{k: v for k, v in r["stats"].items() if k != "caps"}}))
"""


def zipf_dump(path: Path, megabytes: float, seed: int = 0) -> int:
    """A pages-articles .xml.bz2 of Zipf(1.1)-distributed words over a 300k-word vocabulary; returns text bytes."""
    import numpy as np

    from wiki_dump_factory import write_dump

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(300_000)]
    pages, size, i = [], 0, 0
    while size < megabytes * 1e6:
        ranks = np.minimum(rng.zipf(1.1, rng.integers(100, 600)), len(vocab)) - 1
        words = [vocab[r] for r in ranks]
        sentences = [" ".join(words[j:j + 15]) + "." for j in range(0, len(words), 15)]
        text = "\n".join(" ".join(sentences[k:k + 4]) for k in range(0, len(sentences), 4))
        title = f"{vocab[int(ranks[0])]} {vocab[int(ranks[1])]}" if i % 2 else vocab[int(ranks[0])].title()
        pages.append({"title": title, "text": text})
        size += len(text)
        i += 1
    write_dump(path, "en", pages, compress=True)
    return size


def run(dump: Path, out: Path, work: Path, mib: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(dump), str(out), str(work), str(mib)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_titles() -> None:
    """Title counts on ~15 MB of Zipfian lines: the former pyahocorasick walk vs count_titles (Matcher
    + per-occurrence recount of the matched (line, title) pairs), for dense and sparse title sets."""
    import io
    import itertools

    import ahocorasick
    import numpy as np

    from matching.matcher import Matcher, pad_entry, spacing
    from metadata.wiki import count_titles

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(100_000)]
    words = [vocab[r] for r in np.minimum(rng.zipf(1.1, 2_000_000), len(vocab)) - 1]
    text = "\n".join(" ".join(words[j:j + 60]) + "." for j in range(0, len(words), 60)) + "\n"
    sets = {"dense (common single words)": [vocab[i] for i in range(0, 100_000, 7)]
            + [f"{vocab[i]} {vocab[i + 1]}" for i in range(5000)],
            "sparse (word pairs, capitalized words)": [f"{vocab[i]} {vocab[i + 1]}" for i in range(0, 100_000, 2)]
            + [vocab[i].title() for i in range(0, 100_000, 3)]}
    print(f"{len(text) / 1e6:.1f} MB of text")
    print("| titles | n | occurrences | automaton walk s | count_titles s | of which Matcher scan s |")
    print("|---|---|---|---|---|---|")
    for name, titles in sets.items():
        titles = list(dict.fromkeys(titles))
        t = time.perf_counter()
        automaton = ahocorasick.Automaton()
        for i, title in enumerate(titles):
            automaton.add_word(pad_entry(title), i)
        automaton.make_automaton()
        old = [0] * len(titles)
        for line in io.StringIO(text):
            for _, i in automaton.iter(spacing(line.strip())):
                old[i] += 1
        t_old = time.perf_counter() - t
        t = time.perf_counter()
        new = count_titles(titles, io.StringIO(text), progress=False)
        t_new = time.perf_counter() - t
        matcher, f = Matcher(titles, range(len(titles))), io.StringIO(text)
        t = time.perf_counter()
        while batch := [line.strip() for line in itertools.islice(f, 50_000)]:
            matcher.match(batch)
        t_scan = time.perf_counter() - t
        assert new.tolist() == old, name
        print(f"| {name} | {len(titles)} | {sum(old)} | {t_old:.2f} | {t_new:.2f} | {t_scan:.2f} |")


def bench_segmenters() -> None:
    """CPU throughput of each no-space language's default segmenter on chunks of 20 random words
    (wordfreq's ja/zh lists, pythainlp's Thai words, a few words of the other scripts), warmed up."""
    import random

    import wordfreq
    from pythainlp.corpus import thai_words

    from metadata import segmenters

    rng = random.Random(0)
    samples = {
        "ja": list(wordfreq.iter_wordlist("ja", "best"))[:5000],
        "zh": list(wordfreq.iter_wordlist("zh", "best"))[:5000],
        "th": sorted(thai_words())[:5000], "lo": ["ພາສາລາວ", "ມີ", "ຄວາມ", "ສວຍງາມ", "ປະເທດ", "ລາວ", "ເມືອງ", "ຫຼວງ"],
        "km": ["ខ្ញុំ", "ស្រឡាញ់", "ប្រទេស", "កម្ពុជា", "ភ្នំពេញ", "រាជធានី"], "bo": ["བཀྲ་", "ཤིས་", "བདེ་", "ལེགས་", "བོད་", "ཡིག་"],
        "my": ["မြန်မာ", "စာ", "ကျောင်း", "သား", "ရန်ကုန်", "မြို့"],
    }
    print("| language | segmenter | = reference | k chars per CPU s |")
    print("|---|---|---|---|")
    for lang, words in samples.items():
        chosen = segmenters.SEGMENTERS[lang][0]
        segment = segmenters.load(chosen.name)
        chunks = ["".join(rng.choices(words, k=20)) for _ in range(300)]
        segment(chunks[0])
        t = time.process_time()
        for chunk in chunks:
            segment(chunk)
        rate = sum(map(len, chunks)) / (time.process_time() - t) / 1e3
        print(f"| {lang} | {chosen.name} | {'yes' if chosen.reference else 'no'} | {rate:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=20, help="uncompressed article text in MB (default 20)")
    parser.add_argument("--small-mib", type=int, default=8, help="the small --memory-budget in MiB (default 8)")
    parser.add_argument("--titles", action="store_true", help="benchmark title counting instead")
    parser.add_argument("--segmenters", action="store_true",
                        help="benchmark the no-space languages' segmenters instead")
    args = parser.parse_args()
    if args.titles:
        return bench_titles()
    if args.segmenters:
        return bench_segmenters()
    root = Path(tempfile.mkdtemp(prefix="bench-wiki-"))
    try:
        t = time.perf_counter()
        size = zipf_dump(root / "en.xml.bz2", args.mb)
        print(f"dump: {size / 1e6:.1f} MB of text, {(root / 'en.xml.bz2').stat().st_size / 1e6:.1f} MB bz2, "
              f"generated in {time.perf_counter() - t:.0f} s")
        results = {}
        for name, mib in (("no spill (budget 4096 MiB)", 4096),
                          (f"small budget ({args.small_mib} MiB)", args.small_mib)):
            results[name] = run(root / "en.xml.bz2", root / name.split()[0], root / "work", mib)
        print("| configuration | wall s | CPU s | text MB/s (CPU) | peak RSS MiB | runs | peak n-grams in memory | "
              "distinct unigrams | distinct bigrams |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {size / 1e6 / r['cpu_s']:.2f} | "
                  f"{r['peak_rss_mib']:.0f} | {r['runs']} | {r['peak_ngrams_in_memory']} | {r['distinct_unigrams']} | "
                  f"{r['distinct_bigrams']} |")
        a, b = (root / "no" / "entries.parquet").read_bytes(), (root / "small" / "entries.parquet").read_bytes()
        print(f"entries.parquet byte-identical: {a == b}")
        if a != b:
            sys.exit(1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
