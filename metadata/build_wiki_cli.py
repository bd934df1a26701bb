"""Unigrams top min(251465, 10%), bigrams with PMI > 30 up to 100646, titles top min(61235, 76%) by occurrences
in the dump, plus numbers and WordNet; tokens as MetaCLIP 2's build_ngram.py; n-grams are counted in bounded
memory (--memory-budget). English is not rebuilt by MetaCLIP 2 (see --force-english).
"""
from __future__ import annotations

import argparse
import sys

from core.errors import UserError
from core.flags import FINITE
from metadata.recipe import BIGRAM_PMI, DEFAULT_BUDGET_MIB, MIN_BUDGET_MIB
from metadata.report import add_out_flag, print_skips, summary_line
from metadata.segmenters import help_table


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-wiki", help="MetaCLIP 2 recipe from a Wikipedia pages-articles dump",
                               description=__doc__)
    p.add_argument("--dump", required=True, help="pages-articles XML dump (.xml, .xml.bz2 or .xml.gz)")
    p.add_argument("--lang", required=True, help="language of the dump (ISO 639-1 code, e.g. zh)")
    add_out_flag(p)
    p.add_argument("--pmi-threshold", type=FINITE, default=BIGRAM_PMI,
                   help="keep bigrams with PMI (log2) above this (default %(default)s, MetaCLIP's; lower it for "
                        "small dumps)")
    p.add_argument("--no-wordnet", action="store_true",
                   help="do not add the packaged WordNet lemmas of the language")
    p.add_argument("--max-pages", type=int, default=None, metavar="N",
                   help="read only the first N articles (for trials)")
    p.add_argument("--memory-budget", type=int, default=DEFAULT_BUDGET_MIB, metavar="MIB",
                   help="memory for n-gram counting, in MiB (default %(default)s): past about 3,000 distinct n-grams "
                        "per MiB the counters spill a Parquet run and start over; DuckDB merges the "
                        "runs under the same limit, spilling to disk itself. The result does not depend on it")
    p.add_argument("--segmenter", default=None, metavar="NAME",
                   help="word segmenter of a no-space language (default: the first listed); per language: "
                        f"{help_table()}. Spaced languages use the reference's simple_tokenizer")
    p.add_argument("--force-english", action="store_true",
                   help="build --lang en from the dump anyway: MetaCLIP 2 does not, it uses MetaCLIP 1's 500k "
                        "list (import it with `curate metadata add --lang en --file metadata.json --source metaclip1`)")
    p.add_argument("--tmp-dir", default=None, metavar="DIR",
                   help="where spilled runs, DuckDB temp files and the plain text go (default: beside --out); "
                        "needs about the dump's uncompressed text size")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metadata.wiki import build_wiki  # lazy, as every run(): the work's modules load only when it runs
    from metadata.wiki_counts import max_ngrams_for

    if args.memory_budget < MIN_BUDGET_MIB:
        raise UserError(f"--memory-budget {args.memory_budget}: give at least {MIN_BUDGET_MIB} (MiB)")
    result = build_wiki(args.dump, args.lang, args.out, pmi_threshold=args.pmi_threshold,
                        use_wordnet=not args.no_wordnet, max_pages=args.max_pages, progress=not args.quiet,
                        max_ngrams=max_ngrams_for(args.memory_budget),
                        memory_limit_mib=args.memory_budget, tmp_dir=args.tmp_dir,
                        segmenter=args.segmenter, force_english=args.force_english)
    s = result["stats"]
    print(f"  {s['pages']} articles, {s['tokens']} tokens, {s['distinct_unigrams']} distinct unigrams, "
          f"{s['distinct_bigrams']} distinct bigrams ({s['runs']} run(s) spilled, peak "
          f"{s['peak_ngrams_in_memory']} n-grams in memory), {s['bigrams_over_pmi']} bigrams with "
          f"PMI > {args.pmi_threshold}, {s['titles']} titles; tokenizer: {s['tokenizer']}", file=sys.stderr)
    if result["skipped"]:
        print_skips({args.lang: {"wiki": result["skipped"]}})
    print(summary_line(args.out, result["summary"]))
    return 0
