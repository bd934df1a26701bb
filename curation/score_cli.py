"""Write CURATED/scores.parquet (uid, score): the cosine similarity of each image and its KEY.txt under a
CLIP-style Hugging Face model folder (MetaClip2Model or CLIPModel, e.g. RUN/hf from `train`). Then `curate
balance --scores CURATED --min-score S` (or --score-top-fraction F) filters before balancing. Rerunning
resumes per shard.
"""
from __future__ import annotations

import argparse

from core.errors import UserError
from core.flags import POSITIVE_INT
from curation.curated import add_curated_model_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score", help="CLIP-score every image of a CURATED set against its alt-text -> scores.parquet",
        description=__doc__)
    add_curated_model_args(p, "use --online for every image", "CLIP-style Hugging Face folder, e.g. RUN/hf")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from curation.score import score_curated

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, not {args.batch_size}")
    r = score_curated(args.curated, args.model, args.batch_size, args.device)
    print(f"score: {r['images']} images scored with {r['model']}, mean cosine {r['mean']:.4f} -> "
          f"{args.curated}/scores.parquet")
    return 0
