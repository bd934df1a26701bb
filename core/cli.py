"""The command-line runner every console script shares: one-line errors, --storage-options, exit codes.

`curate` (curation.cli) and `train` (training.cli) build their parsers and call run(); a UserError, a
bad flag or a read-only path becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import errno
import sys

from core import storage
from core.errors import UserError

NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)  # read-only or forbidden paths: one line


class Parser(argparse.ArgumentParser):
    """argparse whose errors (a bad or missing flag) are one line like every other UserError, no usage block."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


STORAGE_HELP = ("fsspec options for URL paths as JSON, per protocol ({\"s3\": {\"endpoint_url\": …, \"key\": …}}) "
                "or flat for all; credentials otherwise come from AWS_*/GOOGLE_* variables, ~/.aws, fsspec config")


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """`--storage-options JSON` on every (sub)command, so it may follow the subcommand's own flags."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        parser.add_argument("--storage-options", default=None, metavar="JSON", help=STORAGE_HELP)
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            add_storage_options(child)


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse and dispatch; a UserError becomes one line on stderr and exit code 2."""
    try:
        args = parser.parse_args(argv)
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
