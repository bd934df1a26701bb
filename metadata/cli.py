"""`curate metadata {build,build-wiki,add,stats}`: build, import and inspect META folders."""
from __future__ import annotations

import argparse
import sys

from core.flags import COUNT, FINITE

BIGRAM_PMI_DEFAULT = 30.0  # metadata.wiki.BIGRAM_PMI, repeated so that --help needs no heavy import
MEMORY_BUDGET_DEFAULT = 2048  # metadata.wiki_counts.DEFAULT_BUDGET_MIB, likewise


def _print_skips(skipped: dict, first: dict | None = None) -> None:
    """One line per (language, source) with what was skipped and why."""
    for lang, by_source in skipped.items():
        for source, reasons in by_source.items():
            parts = []
            for reason, n in reasons.items():
                where = f" (first: {first[reason]})" if first and reason in first else ""
                parts.append(f"{n} {reason}{where}")
            print(f"  skipped in {lang}/{source}: {', '.join(parts)}", file=sys.stderr)


def _summary_line(out: str, summary) -> str:
    langs = sorted({lang for lang, _ in summary.added})
    return (f"{out}: added {summary.n_added} entries in {len(langs)} language(s), "
            f"skipped {summary.n_duplicates} duplicates; {summary.total_after} entries in total")


def cmd_build(args: argparse.Namespace) -> int:
    from metadata.packaged import build

    result = build(args.langs, args.out, max_unigrams=args.max_unigrams, progress=not args.quiet)
    _print_skips(result["skipped"])
    for lang, notes in result["notes"].items():
        print(f"  {lang}: {'; '.join(notes)}", file=sys.stderr)
    print(_summary_line(args.out, result["summary"]) + "; packaged lists are a starting point (word-frequency "
          "lists, case-folded: 'paris' matches, 'Paris' does not); MetaCLIP 2's recipe is build-wiki")
    return 0


def cmd_build_wiki(args: argparse.Namespace) -> int:
    from core.errors import UserError
    from metadata.wiki import build_wiki
    from metadata.wiki_counts import MIN_BUDGET_MIB, max_ngrams_for

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
        _print_skips({args.lang: {"wiki": result["skipped"]}})
    print(_summary_line(args.out, result["summary"]))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from metadata.importers import add

    summary, skipped, first = add(args.out, args.lang, args.file, source=args.source, fmt=args.format)
    if skipped:
        _print_skips({args.lang: {args.source: dict(skipped)}}, first)
    print(_summary_line(args.out, summary))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from metadata.stats import print_stats

    print_stats(args.meta, samples=args.samples, langs=args.langs)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from metadata.segmenters import help_table

    parser = subparsers.add_parser(
        "metadata", help="build, import and inspect metadata (META/entries.parquet)",
        description="Metadata entries that alt-texts are matched against: META/entries.parquet "
                    "(entry_id, lang, entry, source) and META/manifest.json. Every command appends to "
                    "META (creating it), keeping existing entry_ids.")
    sub = parser.add_subparsers(dest="metadata_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("build", help="build real metadata offline from packaged sources (wordfreq, WordNet, …)",
                       description="Numbers 0..99, WordNet lemmas, frequent words and PMI-ranked gloss bigrams "
                                   "from sources shipped with PyPI packages; no network. A starting point: the "
                                   "word lists are case-folded while matching is case-sensitive; MetaCLIP 2's "
                                   "recipe is build-wiki. See docs/metadata.md.")
    p.add_argument("--langs", required=True, help="comma-separated language codes (ISO 639-1, e.g. en,de,zh,th) or 'all'")
    p.add_argument("--out", required=True, help="META folder to create or append to")
    p.add_argument("--max-unigrams", type=int, default=100_000, metavar="N",
                   help="most frequent words taken per language from wordfreq / the Thai National Corpus (default 100000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("build-wiki", help="MetaCLIP 2 recipe from a Wikipedia pages-articles dump",
                       description="Unigrams top min(251465, 10%), bigrams with PMI > 30 up to 100646, titles top "
                                   "min(61235, 76%) by occurrences in the dump, plus numbers and WordNet; "
                                   "tokens as MetaCLIP 2's build_ngram.py; n-grams are counted in bounded memory "
                                   "(--memory-budget). English is not rebuilt by MetaCLIP 2 (see --force-english).")
    p.add_argument("--dump", required=True, help="pages-articles XML dump (.xml, .xml.bz2 or .xml.gz)")
    p.add_argument("--lang", required=True, help="language of the dump (ISO 639-1 code, e.g. zh)")
    p.add_argument("--out", required=True, help="META folder to create or append to")
    p.add_argument("--pmi-threshold", type=FINITE, default=BIGRAM_PMI_DEFAULT,
                   help="keep bigrams with PMI (log2) above this (default 30, MetaCLIP's; lower it for small dumps)")
    p.add_argument("--no-wordnet", action="store_true", help="do not add the packaged WordNet lemmas of the language")
    p.add_argument("--max-pages", type=int, default=None, metavar="N", help="read only the first N articles (for trials)")
    p.add_argument("--memory-budget", type=int, default=MEMORY_BUDGET_DEFAULT, metavar="MIB",
                   help=f"memory for n-gram counting, in MiB (default {MEMORY_BUDGET_DEFAULT}): past about 3,000 distinct n-grams per "
                        "MiB the counters spill a Parquet run and start over; DuckDB merges the "
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
    p.set_defaults(func=cmd_build_wiki)

    p = sub.add_parser("add", help="import a list of entries (MetaCLIP 1 metadata.json, JSON list, or one per line)",
                       description="Appends the file's entries, in file order, as one language; duplicates and "
                                   "unusable lines are skipped and reported.")
    p.add_argument("--out", required=True, help="META folder to create or append to")
    p.add_argument("--lang", required=True, help="language of the entries (ISO 639-1 code, e.g. en)")
    p.add_argument("--file", required=True, help="metadata.json / JSON list / text file with one entry per line (UTF-8)")
    p.add_argument("--source", default="user", help="source name stored with each entry (default user; e.g. metaclip1)")
    p.add_argument("--format", choices=("auto", "json", "lines"), default="auto",
                   help="file format; auto: JSON when the file starts with [ or { or ends in .json, else lines")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("stats", help="per-language sizes by source, with samples",
                       description="Reads META/entries.parquet (validated) and prints a table.")
    p.add_argument("meta", help="META folder")
    p.add_argument("--samples", type=COUNT, default=3, metavar="N", help="sample entries shown per language (default 3)")
    p.add_argument("--langs", default=None, help="only these comma-separated languages")
    p.set_defaults(func=cmd_stats)

