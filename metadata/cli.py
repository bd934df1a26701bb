"""`curate metadata {build,build-wiki,add,stats}`: build, import and inspect META folders.

The command layout of every package: PKG/cli.py builds the package's parser (here the `metadata` group of
`curate`) and PKG/<command>_cli.py holds one (sub)command: `register(subparsers)` adds its flags and sets
`func=run`; `run(args)` imports the work's modules when it runs, so `--help` stays light.
"""
from __future__ import annotations

import argparse

from metadata import add_cli, build_cli, build_wiki_cli, stats_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metadata", help="build, import and inspect metadata (META/entries.parquet)",
        description="Metadata entries that alt-texts are matched against: META/entries.parquet "
                    "(entry_id, lang, entry, source) and META/manifest.json. Every command appends to "
                    "META (creating it), keeping existing entry_ids.")
    sub = parser.add_subparsers(dest="metadata_command", metavar="SUBCOMMAND", required=True)
    for command in (build_cli, build_wiki_cli, add_cli, stats_cli):
        command.register(sub)
