"""Reads META/entries.parquet (validated) and prints a table."""
from __future__ import annotations

import argparse

from core.flags import COUNT


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="per-language sizes by source, with samples",
                               description=__doc__)
    p.add_argument("meta", help="META folder")
    p.add_argument("--samples", type=COUNT, default=3, metavar="N",
                   help="sample entries shown per language (default 3)")
    p.add_argument("--langs", default=None, help="only these comma-separated languages")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metadata.stats import print_stats

    print_stats(args.meta, samples=args.samples, langs=args.langs)
    return 0
