"""`curate balance`: INDEX -> per-language thresholds -> balanced, deterministic WebDataset shards."""
from __future__ import annotations

import argparse
import os

from curation.flags import POSITIVE, POSITIVE_INT, SHARE


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "balance", help="balance an INDEX (MetaCLIP 2 thresholds + per-image sampling) -> CURATED shards",
        description="Compute per-language thresholds (t for English, t_L = p_to_t(C_L, t_to_p(C_en, t)) for the "
                    "others), draw one text per image and keep it with probability 1 - prod(1 - p_e), then write "
                    "WebDataset shards from the pool's images (or curated.parquet for URL-only pools: then run "
                    "`curate download`). Draws depend on (seed, uid) only. Rerunning the same command resumes.")
    p.add_argument("--index", required=True, metavar="INDEX", help="INDEX folder made by `curate build-index`")
    p.add_argument("--out", required=True, metavar="CURATED", help="output folder")
    p.add_argument("--t", type=POSITIVE, default=None,
                   help="English head/tail threshold t: entries matched more often are subsampled to about t "
                        "(MetaCLIP: 20000 for a 400M-pair set, 170000 for 2.5B); required unless --p is given")
    p.add_argument("--p", type=SHARE, default=None,
                   help="tail share for the non-English languages instead of t_to_p(C_en, t) (needed when the "
                        "INDEX has no English); without --t English uses p_to_t(C_en, p) too")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default: 0)")
    p.add_argument("--shard-size", type=POSITIVE_INT, default=10000, metavar="N", help="samples per shard (default: 10000)")
    p.add_argument("--online", action="store_true",
                   help="write every matched image and curation.json + counts.parquet so training re-draws a "
                        "balanced subset each epoch")
    p.add_argument("--workers", type=POSITIVE_INT, default=None,
                   help="parallel Ray workers (1 = run in this process; default: all CPUs)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join this running Ray cluster (e.g. 10.0.0.1:6379) instead of starting a local one")
    p.add_argument("--overwrite", action="store_true", help="delete an existing CURATED in --out and start over")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from curation.balance_run import run_balance, summary_line
    from curation.common import UserError

    if args.t is None and args.p is None:
        raise UserError("give --t T (English threshold, e.g. --t 20000) or --p P (tail share)")
    workers = args.workers if args.workers is not None else (None if args.ray_address else os.cpu_count())
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, not {workers}")
    stats = run_balance(args.index, args.out, t=args.t, p=args.p, seed=args.seed, shard_size=args.shard_size,
                        online=args.online, workers=workers, ray_address=args.ray_address,
                        overwrite=args.overwrite)
    print(summary_line(stats, args.out))
    return 0
