"""Evaluate an exported model (RUN/hf) on an image folder (DIR/<class>/*.jpg + classnames.<lang>.txt) or
WebDataset shards (image + .txt caption + class label), or a CLIP_benchmark WebDataset folder
(ROOT/test/nshards.txt, classnames.txt, zeroshot_classification_templates.txt; retrieval sets with several
captions per image); see docs/evaluation.md. --model, --data, --classnames and --out take local paths or URLs
(s3://, gs://, hf://, file://): data is streamed from the store, the model folder copied once per machine into
WORLDCLIP_SCRATCH (default: the temp folder).
"""
from __future__ import annotations

import argparse

from core.flags import COUNT, POSITIVE_INT


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="zero-shot classification and image<->text retrieval of an exported model",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True,
                   help="folder written by train (RUN/hf) or another MetaClip2/CLIP folder (path or URL)")
    p.add_argument("--data", required=True,
                   help="image folder, .tar shard, brace pattern, folder of shards (join several with ::), "
                        "or a CLIP_benchmark wds folder (paths or URLs)")
    p.add_argument("--langs", nargs="+", default=None,
                   help="zero-shot languages (default: every language with class names and templates)")
    p.add_argument("--classnames", default=None,
                   help="folder with classnames.json / classnames.<lang>.txt (default: next to the data)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=64)
    p.add_argument("--workers", type=COUNT, default=0, help="image decoding processes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--out", default=None,
                   help="results file, path or URL (default: eval.json next to the model folder, i.e. RUN/eval.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.eval import run_eval

    run_eval(args.model, args.data, args.out, langs=args.langs, batch_size=args.batch_size,
             workers=args.workers, classnames=args.classnames, device=args.device)
    return 0
