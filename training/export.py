"""Export a trained model as a Hugging Face folder: `export_hf(model, tokenizer_dir, image_size, out_dir)`.

`RUN/hf/` holds the MetaClip2Model weights (safetensors) and config, the tokenizer (plus the
original `sentencepiece.bpe.model`, so the folder is also a valid `--tokenizer` for `train`), and a
CLIPProcessor/CLIPImageProcessor equivalent to the eval transform. It loads offline with
`MetaClip2Model.from_pretrained`, `AutoTokenizer`, `AutoProcessor`, `CLIPImageProcessor` and
`pipeline("zero-shot-image-classification", model=RUN/hf)`. The folder is written under a temporary
name and renamed into place, so a reader never sees a half-written export.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from core.errors import UserError


def unwrap(model):
    """The bare MetaClip2Model behind DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "module") and not hasattr(model, "save_pretrained"):
            model = model.module
        else:
            return model


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder `tmp` onto `out`; an older `out` is removed only after the swap."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_hf(model, tokenizer_dir: str | os.PathLike, image_size: int, out_dir: str | os.PathLike,
              write_weights: Callable[[Path], None] | None = None) -> Path:
    """Write model + tokenizer + image processor to `out_dir` atomically; return `out_dir`.
    `write_weights(folder)` replaces `save_pretrained` for config and weights (sharded models)."""
    from transformers import CLIPProcessor

    from training.loss import hf_state_dict
    from training.tokenizer import SPM_FILE, load_tokenizer
    from training.tokenizer import tokenizer_dir as resolve_tokenizer
    from training.transforms import clip_image_processor

    model = unwrap(model)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer.model_max_length = model.config.text_config.max_position_embeddings
    if len(tokenizer) > model.config.text_config.vocab_size:
        raise UserError(f"tokenizer {tokenizer_dir} has {len(tokenizer)} tokens but the model's vocabulary is "
                        f"{model.config.text_config.vocab_size}: export with the tokenizer the model was trained with")
    if tokenizer.eos_token_id != model.config.text_config.eos_token_id:
        raise UserError(f"tokenizer {tokenizer_dir} ends texts with token {tokenizer.eos_token_id} but the model pools "
                        f"at {model.config.text_config.eos_token_id}: export with the tokenizer the model was trained "
                        "with")
    image_processor = clip_image_processor(image_size)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp.", dir=out.parent))
    try:
        if write_weights is None:
            model.save_pretrained(tmp, safe_serialization=True, state_dict=hf_state_dict(model))
        else:
            write_weights(tmp)
        CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(tmp)
        image_processor.save_pretrained(tmp)
        spm = resolve_tokenizer(tokenizer_dir) / SPM_FILE
        if spm.is_file():
            shutil.copyfile(spm, tmp / SPM_FILE)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        replace_dir(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"could not write the export to {out}: {e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
