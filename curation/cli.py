"""`curate`: the curation command line. Each subcommand lives in its own module and registers itself.

A module listed in SUBCOMMANDS exposes `register(subparsers)` which adds its parser and sets
`func=callable(args) -> int | None`. Heavy imports (ray, torch) happen inside those callables so
`curate --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from core.cli import Parser, add_storage_options, run

SUBCOMMANDS = [
    "metadata.cli",
    "curation.build_index_cli",
    "curation.balance_cli",
    "curation.download_cli",
    "curation.stats_cli",
    "curation.captions_cli",
    "curation.recaption_cli",
    "curation.score_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="curate",
        description="MetaCLIP-style curation: metadata -> build-index (matching) -> balance -> shards.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.register(sub)
    add_storage_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
