"""Train a SentencePiece model on the shards' captions (.txt and every matched text in .json) and write
DIR/sentencepiece.bpe.model plus the transformers files, loadable as --tokenizer DIR.
"""
from __future__ import annotations

import argparse
import sys

from core.flags import POSITIVE_INT


def register(subparsers) -> None:
    p = subparsers.add_parser("tokenizer", description=__doc__,
                              help="train a small SentencePiece tokenizer (XLM-V layout) from shard captions")
    p.add_argument("--shards", required=True,
                   help="WebDataset shards in brace notation; several sources joined with '::'")
    p.add_argument("--vocab-size", type=POSITIVE_INT, default=8000,
                   help="target vocabulary size (a soft limit for small corpora; default 8000)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--max-texts", type=POSITIVE_INT, default=2_000_000,
                   help="use at most this many captions (default 2,000,000)")
    p.set_defaults(func=run)


def captions(urls: list[str], limit: int):
    """Captions from the shards: each sample's .txt, else its .json texts."""
    import json

    from tqdm import tqdm

    from training.data import Unit, read_raw

    n = 0
    for url in tqdm(urls, desc="read captions", unit="shard", file=sys.stderr):
        for raw in read_raw(Unit(url)):
            texts = []
            if "json" in raw:
                try:
                    texts = [t[0] for t in json.loads(raw["json"]).get("texts", [])]
                except (ValueError, AttributeError, TypeError, IndexError):
                    texts = []
            if not texts and "txt" in raw:
                texts = [raw["txt"].decode("utf-8", "replace")]
            for t in texts:
                yield t
                n += 1
                if n >= limit:
                    return


def run(args: argparse.Namespace) -> int:
    from core.errors import UserError
    from training.data import expand_sources
    from training.tokenizer import train_sentencepiece

    if args.vocab_size < 8:
        raise UserError(f"--vocab-size {args.vocab_size}: must be at least 8")
    urls = [u for s in expand_sources(args.shards) for u in s.urls]
    n = train_sentencepiece(captions(urls, args.max_texts), args.vocab_size, args.out)
    print(f"train tokenizer: {n} tokens from {len(urls)} shards -> {args.out}", file=sys.stderr)
    return 0
