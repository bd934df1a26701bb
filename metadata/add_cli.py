"""Appends the file's entries, in file order, as one language; duplicates and unusable lines are skipped and
reported.
"""
from __future__ import annotations

import argparse

from metadata.report import add_out_flag, print_skips, summary_line


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("add", description=__doc__,
                              help="import a list of entries (MetaCLIP 1 metadata.json, JSON list, or one per line)")
    add_out_flag(p)
    p.add_argument("--lang", required=True, help="language of the entries (ISO 639-1 code, e.g. en)")
    p.add_argument("--file", required=True,
                   help="metadata.json / JSON list / text file with one entry per line (UTF-8)")
    p.add_argument("--source", default="user",
                   help="source name stored with each entry (default user; e.g. metaclip1)")
    p.add_argument("--format", choices=("auto", "json", "lines"), default="auto",
                   help="file format; auto: JSON when the file starts with [ or { or ends in .json, else lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metadata.importers import add

    summary, skipped, first = add(args.out, args.lang, args.file, source=args.source, fmt=args.format)
    if skipped:
        print_skips({args.lang: {args.source: dict(skipped)}}, first)
    print(summary_line(args.out, summary))
    return 0
