"""Run a local transformers image-to-text checkpoint (anything AutoModelForImageTextToText loads with its
processor: BLIP, Florence-2, LLaVA-style, VisionEncoderDecoder) over every image of CURATED, write
captions/NAME/<shard>.parquet (uid, caption, alt) and attach them as caption source NAME. With --fuse-with, a
local causal LM merges each alt-text and caption into one caption (VeCLIP's VeCap), written and attached as
--fuse-source. Greedy decoding unless --sample. Rerunning the same command resumes (finished parts are
skipped).
"""
from __future__ import annotations

import argparse
import os

from core.errors import UserError
from core.flags import POSITIVE_INT
from curation.curated import add_curated_model_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recaption", help="caption a CURATED set's images with a local image-to-text model (VeCLIP), attach them",
        description=__doc__)
    add_curated_model_args(p, "with shards/", "local image-to-text checkpoint folder")
    p.add_argument("--source", required=True, metavar="NAME", help="caption source name for the captions, e.g. blip")
    p.add_argument("--prompt", default=None,
                   help="text prompt given with each image (e.g. '<MORE_DETAILED_CAPTION>' for Florence-2, "
                        "'USER: <image>\\nDescribe the image. ASSISTANT:' for LLaVA; default: none)")
    p.add_argument("--fuse-with", default=None, metavar="DIR",
                   help="local causal LM folder: fuse alt-text + caption into one caption (VeCLIP)")
    p.add_argument("--fuse-source", default="vecap", metavar="NAME",
                   help="source name of fused captions (default: vecap)")
    p.add_argument("--fuse-prompt", default=None,
                   help="fusion prompt with {alt} and {caption} placeholders (default: "
                        "curation.recaption.FUSE_PROMPT, see docs/cli.md)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=16,
                   help="images (or pairs) per generate call (default: 16)")
    p.add_argument("--max-new-tokens", type=POSITIVE_INT, default=40, help="longest caption in tokens (default: 40)")
    p.add_argument("--num-beams", type=POSITIVE_INT, default=1, help="beam search width (default: 1, greedy)")
    p.add_argument("--sample", action="store_true",
                   help="sample instead of greedy decoding (seeded per part by --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampled decoding (default: 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray actors, each loading the model once: one GPU each when there are GPUs, else one CPU "
                        "(1 = run in this process; default: number of GPUs, else CPUs)")
    p.add_argument("--ray-address", default=None, metavar="ADDR", help="join this running Ray cluster")
    p.add_argument("--overwrite", action="store_true", help="discard earlier captions/NAME parts and start over")
    p.set_defaults(func=run)


def _default_workers() -> int:
    import torch

    return torch.cuda.device_count() or os.cpu_count() or 1


def run(args: argparse.Namespace) -> int:
    from curation.recaption import FUSE_PROMPT, Decoding
    from curation.recaption_run import run_recaption, summary_line

    prompt = args.fuse_prompt or FUSE_PROMPT
    if "{alt}" not in prompt or "{caption}" not in prompt:
        raise UserError("--fuse-prompt must contain {alt} and {caption}")
    workers = args.workers if args.workers is not None else _default_workers()
    decoding = Decoding(max_new_tokens=args.max_new_tokens, num_beams=args.num_beams, do_sample=args.sample,
                        seed=args.seed)
    for report in run_recaption(args.curated, args.model, args.source, prompt=args.prompt, decoding=decoding,
                                batch_size=args.batch_size, workers=workers, ray_address=args.ray_address,
                                fuse_with=args.fuse_with, fuse_source=args.fuse_source, fuse_prompt=prompt,
                                overwrite=args.overwrite):
        print(summary_line(report, workers))
    return 0
