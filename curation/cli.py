"""`curate`: the curation command line. Each subcommand lives in its own module and registers itself.

A module listed in SUBCOMMANDS exposes `register(subparsers)` which adds its parser and sets
`func=callable(args) -> int | None`. Heavy imports (ray, torch) happen inside those callables so
`curate --help` stays fast.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import sys

from curation.common import UserError

NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)  # read-only or forbidden paths: one line
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


class Parser(argparse.ArgumentParser):
    """argparse whose errors (a bad or missing flag) are one line like every other UserError, no usage block."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


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
    _add_storage_options(parser)
    return parser


STORAGE_HELP = ("fsspec options for URL paths as JSON, per protocol ({\"s3\": {\"endpoint_url\": …, \"key\": …}}) "
                "or flat for all; credentials otherwise come from AWS_*/GOOGLE_* variables, ~/.aws, fsspec config")


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    """`--storage-options JSON` on every (sub)command, so it may follow the subcommand's own flags."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        parser.add_argument("--storage-options", default=None, metavar="JSON", help=STORAGE_HELP)
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            _add_storage_options(child)


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse and dispatch; a UserError becomes one line on stderr and exit code 2."""
    try:
        args = parser.parse_args(argv)
        from curation import storage

        storage.configure(getattr(args, "storage_options", None))
        rc = args.func(args)
    except UserError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in NOT_WRITABLE:
            raise
        print(f"{parser.prog}: error: {e.filename or 'a file'}: {e.strerror}; fix its permissions or mount (a "
              "read-only --out: choose a writable one) and rerun", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(rc or 0)


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
