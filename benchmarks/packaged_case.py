"""What the packaged (case-folded) word lists of `curate metadata build` miss because matching is
case-sensitive, and how much the single-kana Japanese entries match.

English: synthetic web alt-texts (benchmarks/corpora.py: first letter capitalised, ~15% of words
title-cased) matched against the packaged English list as built, and against the same list plus
each entry's capitalised and title-cased forms. Japanese: the share of synthetic alt-texts whose
match set holds a one-kana entry (の, に, …), in the default mode and with --compat metaclip.

    .venv/bin/python benchmarks/packaged_case.py [--texts 20000]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

KANA = ((0x3040, 0x30FF), (0xFF66, 0xFF9F))


def rates(entries: list[str], texts: list[str], compat: bool = False) -> tuple[float, float, list[list[int]]]:
    """(share of texts with a match, mean matched entries per text, the match lists)."""
    from matching.matcher import Matcher

    lists = Matcher(entries, range(len(entries)), compat=compat).match(texts).lists()
    sizes = np.array([len(m) for m in lists])
    return float((sizes > 0).mean()), float(sizes.mean()), lists


def packaged(lang: str) -> list[str]:
    from metadata.packaged import clean, wordfreq_words

    return clean(wordfreq_words(lang, 100_000), lang, Counter(), digits_are_placeholders=True)


def english(n: int) -> None:
    from corpora import alt_texts

    entries = packaged("en")
    texts = alt_texts("en", n, seed=1)
    seen = set(entries)
    cased = entries + [v for e in entries for v in dict.fromkeys((e.capitalize(), e.title())) if v not in seen]
    capital = [t for t in texts if any(w[:1].isupper() for w in t.split()[1:])]
    print(f"en: {len(entries)} packaged entries, +{len(cased) - len(entries)} cased forms; {len(texts)} alt-texts, "
          f"{len(capital)} with a capitalised word after the first")
    print("| texts | entries | texts with a match | matched entries per text |")
    print("|---|---|---|---|")
    for label, subset in (("all", texts), ("with capitalised words", capital)):
        for name, es in (("packaged (case-folded)", entries), ("+ cased forms", cased)):
            share, mean, _ = rates(es, subset)
            print(f"| {label} | {name} | {share:.1%} | {mean:.2f} |")


def japanese(n: int) -> None:
    from corpora import alt_texts

    entries = packaged("ja")
    single = {i for i, e in enumerate(entries) if len(e) == 1 and any(lo <= ord(e) <= hi for lo, hi in KANA)}
    texts = alt_texts("ja", n, seed=1)
    kana = "".join(sorted(entries[i] for i in single))[:40]
    print(f"ja: {len(entries)} packaged entries, {len(single)} of one kana ({kana}…)")
    print("| mode | texts with a match | with a one-kana entry | only one-kana entries |")
    print("|---|---|---|---|")
    for compat in (False, True):
        share, _, lists = rates(entries, texts, compat)
        with_single = np.mean([bool(single.intersection(m)) for m in lists])
        only_single = np.mean([bool(m) and set(m) <= single for m in lists])
        mode = "--compat metaclip" if compat else "default"
        print(f"| {mode} | {share:.1%} | {with_single:.1%} | {only_single:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=20_000, help="alt-texts per language (default 20000)")
    args = parser.parse_args()
    english(args.texts)
    japanese(args.texts)


if __name__ == "__main__":
    main()
