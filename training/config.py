"""TrainConfig: everything `train` needs, and the one home of every `train` flag's default.

training.train_cli builds the flags from these fields' defaults (parser.set_defaults), so a default is
written here only. Light on purpose (no torch): `train --help` reads it.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields


@dataclass
class TrainConfig:
    """Everything `train` needs; one field per CLI flag (plus model_vocab), with the flag's default."""

    shards: str
    tokenizer: str
    out: str
    model: str = "tiny"
    shards_weights: str | None = None
    batch_size: int = 32
    epochs: float | None = None
    steps: int | None = None
    lr: float = 5e-4
    wd: float = 0.2
    warmup: int = 100
    accum_freq: int = 1
    precision: str = "fp32"
    grad_checkpointing: bool = False
    local_loss: bool = False
    gather_with_grad: bool = False
    workers: int = 2
    seed: int = 0
    save_every: int = 1000
    resume: str | None = None
    curation_t: float | None = None
    eval_data: str | None = None
    compile: bool = False
    image_size: int | None = None
    device: str | None = None
    log_samples: bool = False
    shuffle_block: int = 1000
    caption_mix: str | None = None
    caption_mix_langs: str | None = None
    model_vocab: int | None = None  # embedding rows if larger than the tokenizer (benchmarks: XLM-V's 901,629)
    fsdp: bool = False
    lanes: int | None = None
    loss: str = "clip"
    patch_dropout: float = 0.0
    lock_image: bool = False
    init_from: str | None = None
    layer_decay: float | None = None
    log: tuple[str, ...] = ()
    overwrite: bool = False


def defaults() -> dict:
    """{field: default} of every TrainConfig field that has one."""
    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
