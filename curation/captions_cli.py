"""`curate captions add CURATED --captions FILE.parquet --source NAME`: attach captions made elsewhere."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("captions", help="attach extra captions (e.g. VeCLIP's VeCap) to a CURATED set",
                              description="Manage the `captions: {source: text}` of each sample's KEY.json.")
    sub = p.add_subparsers(dest="captions_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="attach (uid, caption) Parquet rows as caption source NAME",
                       description="Rewrite every shard of CURATED so that KEY.json carries captions[NAME] from the "
                                   "Parquet file(s) (columns uid, caption); KEY.txt stays the alt-text. Shards are "
                                   "rewritten atomically and deterministically; rerunning resumes. stats.json gains "
                                   "captions.NAME with captioned/uncaptioned images and captions for unknown uids.")
    a.add_argument("curated", metavar="CURATED", help="output folder of `curate balance`")
    a.add_argument("--captions", required=True, nargs="+", metavar="FILE.parquet",
                   help="Parquet file(s) with columns uid and caption (the first of a repeated uid is used)")
    a.add_argument("--source", required=True, metavar="NAME",
                   help="caption source name, e.g. vecap or blip (train --caption-mix refers to it)")
    a.set_defaults(func=run_add)


def run_add(args: argparse.Namespace) -> int:
    from curation.captions import attach, summary_line

    entry = attach(args.curated, args.source, args.captions)
    print(summary_line(args.source, entry, args.curated))
    return 0
