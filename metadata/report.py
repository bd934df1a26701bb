"""What the metadata commands that write META share: their --out flag, and what they print (skipped entries
per (language, source) and the one-line summary)."""
from __future__ import annotations

import argparse
import sys


def add_out_flag(p: argparse.ArgumentParser) -> None:
    """--out META of `curate metadata build`, `build-wiki` and `add`."""
    p.add_argument("--out", required=True, help="META folder to create or append to")


def print_skips(skipped: dict, first: dict | None = None) -> None:
    """One line per (language, source) with what was skipped and why."""
    for lang, by_source in skipped.items():
        for source, reasons in by_source.items():
            parts = []
            for reason, n in reasons.items():
                where = f" (first: {first[reason]})" if first and reason in first else ""
                parts.append(f"{n} {reason}{where}")
            print(f"  skipped in {lang}/{source}: {', '.join(parts)}", file=sys.stderr)


def summary_line(out: str, summary) -> str:
    langs = sorted({lang for lang, _ in summary.added})
    return (f"{out}: added {summary.n_added} entries in {len(langs)} language(s), "
            f"skipped {summary.n_duplicates} duplicates; {summary.total_after} entries in total")
