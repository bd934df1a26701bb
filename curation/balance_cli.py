"""Compute per-language thresholds (t for English, t_L = p_to_t(C_L, t_to_p(C_en, t)) for the others), draw one
text per image and keep it with probability 1 - prod(1 - p_e), then write WebDataset shards from the pool's
images (or curated.parquet for URL-only pools: then run `curate download`). Draws depend on (seed, uid) only.
Rerunning the same command resumes.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from core.errors import UserError
from core.flags import FINITE, POSITIVE, POSITIVE_INT, SHARE, number
from curation.curated import SHARD_SIZE


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "balance", help="balance an INDEX (MetaCLIP 2 thresholds + per-image sampling) -> CURATED shards",
        description=__doc__)
    p.add_argument("--index", required=True, metavar="INDEX", help="INDEX folder made by `curate build-index`")
    p.add_argument("--out", required=True, metavar="CURATED", help="output folder")
    p.add_argument("--t", type=POSITIVE, default=None,
                   help="English head/tail threshold t: entries matched more often are subsampled to about t "
                        "(MetaCLIP: 20000 for a 400M-pair set, 170000 for 2.5B); required unless --p is given")
    p.add_argument("--p", type=SHARE, default=None,
                   help="tail share for the non-English languages instead of t_to_p(C_en, t) (needed when the "
                        "INDEX has no English); without --t English uses p_to_t(C_en, p) too")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default: 0)")
    p.add_argument("--shard-size", type=POSITIVE_INT, default=SHARD_SIZE, metavar="N",
                   help="samples per shard (default: %(default)s)")
    p.add_argument("--online", action="store_true",
                   help="write every matched image and curation.json + counts.parquet so training re-draws a "
                        "balanced subset each epoch")
    p.add_argument("--workers", type=POSITIVE_INT, default=None,
                   help="parallel workers (1 = run in this process; more: processes forked from this one, or Ray "
                        "workers when a path is a URL or with --ray-address; default: all CPUs)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run the workers on this running Ray cluster (e.g. 10.0.0.1:6379)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing CURATED in --out and start over")
    p.add_argument("--scores", default=None, metavar="SCORES",
                   help="CLIP scores from `curate score` (a scores.parquet, or the CURATED folder holding it) for "
                        "--min-score / --score-top-fraction; images without a score are dropped, counted")
    p.add_argument("--min-score", type=FINITE, default=None, metavar="S",
                   help="before balancing, keep only images whose image-text cosine is >= S (DataComp's CLIP score)")
    p.add_argument("--score-top-fraction", type=number(float, 0, 1, lo_open=True), default=None, metavar="F",
                   help="before balancing, keep only the best-scoring fraction F (0 < F <= 1) of the scored images")
    p.set_defaults(func=run)


def score_filter(args: argparse.Namespace) -> dict | None:
    """The --scores/--min-score/--score-top-fraction filter for run_balance, checked; None without one."""
    if args.min_score is None and args.score_top_fraction is None:
        if args.scores:
            raise UserError("--scores needs --min-score S or --score-top-fraction F")
        return None
    if not args.scores:
        raise UserError("--min-score/--score-top-fraction need --scores CURATED/scores.parquet (from `curate score`)")
    f = args.score_top_fraction
    if f is not None and not 0 < f <= 1:
        raise UserError(f"--score-top-fraction {f}: give a fraction in (0, 1]")
    scores = Path(args.scores) / "scores.parquet" if Path(args.scores).is_dir() else Path(args.scores)
    if not scores.is_file():
        raise UserError(f"--scores {args.scores}: no such file; make it with `curate score CURATED --model RUN/hf`")
    return {"scores": str(scores), "min_score": args.min_score, "top_fraction": f}


def run(args: argparse.Namespace) -> int:
    from curation.balance_run import run_balance, summary_line

    if args.t is None and args.p is None:
        raise UserError("give --t T (English threshold, e.g. --t 20000) or --p P (tail share)")
    workers = args.workers if args.workers is not None else (None if args.ray_address else os.cpu_count())
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, not {workers}")
    stats = run_balance(args.index, args.out, t=args.t, p=args.p, seed=args.seed, shard_size=args.shard_size,
                        online=args.online, workers=workers, ray_address=args.ray_address,
                        overwrite=args.overwrite, score_filter=score_filter(args))
    print(summary_line(stats, args.out))
    return 0
