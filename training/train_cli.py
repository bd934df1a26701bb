"""`train --shards … --out RUN`: flags -> TrainConfig -> training.train.train."""
from __future__ import annotations

import argparse

from core.flags import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_INT, SHARE, number
from training.config import TrainConfig, defaults
from training.loggers import SINKS
from training.loss import LOSSES
from training.models import PRESETS


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Every `train` flag, with help; the defaults are TrainConfig's (training.config), set once at the end."""
    p.add_argument("--shards", required=True,
                   help="WebDataset shards in brace notation, e.g. 'CURATED/shards/{00000..00099}.tar'; join several "
                        "sources with '::'")
    p.add_argument("--shards-weights",
                   help="upsampling factor per '::' source, as OpenCLIP's: shards are drawn with replacement, each "
                        "with its source's factor as weight ('1::1' samples sources in proportion to their shard "
                        "counts, '1::10' makes each shard of the second ten times as likely)")
    p.add_argument("--model", choices=list(PRESETS),
                   help="MetaCLIP 2 worldwide architecture preset (tiny for tests and the demo)")
    p.add_argument("--tokenizer", required=True,
                   help="directory with XLM-V's sentencepiece.bpe.model (or a `train tokenizer` output), or "
                        "facebook/xlm-v-base from the local HF cache")
    p.add_argument("--out", required=True,
                   help="run directory: checkpoints/, metrics.jsonl, plots/, hf/ (exported model)")
    p.add_argument("--batch-size", type=POSITIVE_INT, help="samples per micro-batch per process (default %(default)s)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--epochs", type=POSITIVE,
                   help="train this many passes over the shards (online curation: over the expected kept subset)")
    g.add_argument("--steps", type=POSITIVE_INT, help="train this many optimiser steps")
    p.add_argument("--lr", type=POSITIVE, help="peak learning rate of AdamW (default %(default)s)")
    p.add_argument("--wd", type=NON_NEGATIVE, help="AdamW weight decay on weight matrices (default %(default)s)")
    p.add_argument("--warmup", type=COUNT, help="linear warmup steps before the cosine decay (default %(default)s)")
    p.add_argument("--accum-freq", type=POSITIVE_INT,
                   help="micro-batches per optimiser step; the loss is over the whole accumulated batch "
                        "(default %(default)s)")
    p.add_argument("--precision", choices=["fp32", "bf16", "amp"],
                   help="fp32, bf16 autocast, or amp (fp16 autocast + grad scaler, GPU only)")
    p.add_argument("--grad-checkpointing", action="store_true", help="recompute activations in backward to save memory")
    p.add_argument("--local-loss", action="store_true",
                   help="each process scores only its own rows against all gathered features (OpenCLIP --local-loss)")
    p.add_argument("--gather-with-grad", action="store_true",
                   help="all-gather features with gradient (OpenCLIP --gather-with-grad)")
    p.add_argument("--workers", type=COUNT,
                   help="DataLoader worker processes per rank for reading and decoding (default %(default)s)")
    p.add_argument("--seed", type=int,
                   help="seed for init, shard order, shuffling and augmentation (default %(default)s)")
    p.add_argument("--save-every", type=POSITIVE_INT,
                   help="write a checkpoint every N steps, and at the end (default %(default)s)")
    p.add_argument("--resume",
                   help="'latest' (newest checkpoint in RUN/checkpoints, fresh start if none) or a checkpoint path")
    p.add_argument("--curation-t", type=POSITIVE,
                   help="online curation: English threshold t to use instead of curation.json's (no re-matching)")
    p.add_argument("--eval-data", help="evaluate the exported model on this data (path or URL) at the end; its layout "
                   "is checked before the first step (see `train eval --help`)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--image-size", type=POSITIVE_INT,
                   help="input resolution (default: the preset's; must be a multiple of the patch size)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--log-samples", action="store_true",
                   help="also write every consumed sample uid per step to RUN/samples/rank<R>.jsonl (data audits)")
    p.add_argument("--overwrite", action="store_true",
                   help="start RUN again: delete what an earlier train wrote there (checkpoints, logs, plots, hf/); "
                        "without it or --resume, a RUN holding a run is refused")
    p.add_argument("--loss", choices=list(LOSSES),
                   help="clip: softmax contrastive (InfoNCE, default); siglip: pairwise sigmoid loss with a learnt "
                        "bias (scale ln 10, bias -10 at init; texts of all processes are gathered with gradient, "
                        "--local-loss and --gather-with-grad apply to clip)")
    p.add_argument("--patch-dropout", type=SHARE,
                   help="fraction of image patches dropped in training (FLIP; e.g. 0.5); evaluation sees all patches")
    p.add_argument("--lock-image", action="store_true",
                   help="freeze the image tower and its projection (LiT); usually with --init-from")
    p.add_argument("--init-from", metavar="DIR",
                   help="initialise the towers from a Hugging Face MetaClip2/CLIP folder or its URL (e.g. RUN/hf or "
                        "a MetaCLIP 2 release); shapes and activation must match --model")
    p.add_argument("--layer-decay", type=number(float, 0, 1, lo_open=True),
                   help="layer-wise learning-rate decay per tower (e.g. 0.75): "
                        "block i of L trains at lr x decay^(L - i)")
    p.add_argument("--log", nargs="+", choices=list(SINKS),
                   help="also log metrics to TensorBoard (RUN/tensorboard) and/or W&B (offline, RUN/wandb); "
                        "each needs its package")
    p.add_argument("--caption-mix", metavar="SRC:W,...",
                   help="draw each sample's caption source per (seed, epoch, uid), e.g. alt:0.5,vecap:0.5 (alt = the "
                        "alt-text; others = KEY.json captions from `curate captions add`/`recaption`); a missing "
                        "source falls back to the alt-text, counted")
    p.add_argument("--caption-mix-langs", metavar="LANGS",
                   help="only alt-texts in these languages (e.g. en) may be replaced by an enriched caption; "
                        "default: all")
    p.add_argument("--shuffle-block", type=POSITIVE_INT,
                   help="samples read and shuffled together within a shard (default %(default)s)")
    p.add_argument("--fsdp", action="store_true",
                   help="shard weights, gradients and AdamW state over the processes (FSDP2, per block and tower); "
                        "sharded checkpoints")
    p.add_argument("--lanes", type=POSITIVE_INT,
                   help="parallel read streams the global sample order is built from (default: processes x workers of "
                        "the first run; kept on resume)")

    p.set_defaults(**{k: v for k, v in defaults().items() if k != "model_vocab"})

def run_train(args: argparse.Namespace) -> int:
    from training.distributed import shutdown  # lazy: torch, and training.train's whole stack, only to train
    from training.train import train

    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__})
    try:
        train(cfg)
    except BaseException:
        shutdown(sync=False)
        raise
    shutdown()
    return 0
