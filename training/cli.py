"""`train`: CLIP training on WebDataset shards, plus `train tokenizer` and `train eval`.

`train --shards ... --out RUN` trains (the default action); `train tokenizer ...` and
`train eval ...` are subcommands. Modules listed in SUBCOMMANDS expose `register(subparsers)`;
the training module exposes `add_train_arguments(parser)` and `run_train(args)`. Every command takes
`--storage-options JSON` (curate's flag: fsspec options for URL paths).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from core.cli import Parser, add_storage_options, run

SUBCOMMANDS = ["training.tokenizer_cli", "training.eval_cli"]


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = Parser(prog="train", description="Train a MetaCLIP 2 (MetaClip2Model) CLIP model on WebDataset shards.")
    names = {m.rsplit(".", 1)[1].removesuffix("_cli"): m for m in SUBCOMMANDS}
    if argv and argv[0] in names:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
        importlib.import_module(names[argv[0]]).register(sub)
    else:
        from training import train_cli

        train_cli.add_train_arguments(parser)
        parser.set_defaults(func=train_cli.run_train)
        parser.epilog = "Subcommands: " + ", ".join(f"train {n} --help" for n in names)
    add_storage_options(parser)  # as on every curate command: reaches DataLoader workers and DCP writers (env)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run(build_parser(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
