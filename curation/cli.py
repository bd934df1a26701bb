"""`curate`: the curation command line. Each subcommand lives in its own module and registers itself.

The command layout of every package (curation, metadata, training): PKG/cli.py builds the parser and
PKG/<command>_cli.py holds one command: `register(subparsers)` adds its flags and sets `func=run`;
`run(args) -> int` imports the work's modules (ray, torch, …) when it runs, so `curate --help` stays fast.
`curate metadata …` is metadata's group (metadata.cli).
"""
from __future__ import annotations

import argparse
import sys

from core.cli import Parser, add_storage_options, run
from curation import balance_cli, build_index_cli, captions_cli, download_cli, recaption_cli, score_cli, stats_cli
from metadata import cli as metadata_cli

SUBCOMMANDS = [metadata_cli, build_index_cli, balance_cli, download_cli, stats_cli, captions_cli, recaption_cli,
               score_cli]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="curate",
        description="MetaCLIP-style curation: metadata -> build-index (matching) -> balance -> shards.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS:
        command.register(sub)
    add_storage_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
