"""Numbers 0..99, WordNet lemmas, frequent words and PMI-ranked gloss bigrams from sources shipped with PyPI
packages; no network. A starting point: the word lists are case-folded while matching is case-sensitive;
MetaCLIP 2's recipe is build-wiki. See docs/metadata.md.
"""
from __future__ import annotations

import argparse
import sys

from metadata.report import add_out_flag, print_skips, summary_line


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build", description=__doc__,
                              help="build real metadata offline from packaged sources (wordfreq, WordNet, …)")
    p.add_argument("--langs", required=True,
                   help="comma-separated language codes (ISO 639-1, e.g. en,de,zh,th) or 'all'")
    add_out_flag(p)
    p.add_argument("--max-unigrams", type=int, default=100_000, metavar="N",
                   help="most frequent words taken per language from wordfreq / the Thai National Corpus "
                        "(default 100000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metadata.packaged import build

    result = build(args.langs, args.out, max_unigrams=args.max_unigrams, progress=not args.quiet)
    print_skips(result["skipped"])
    for lang, notes in result["notes"].items():
        print(f"  {lang}: {'; '.join(notes)}", file=sys.stderr)
    print(summary_line(args.out, result["summary"]) + "; packaged lists are a starting point (word-frequency "
          "lists, case-folded: 'paris' matches, 'Paris' does not); MetaCLIP 2's recipe is build-wiki")
    return 0
