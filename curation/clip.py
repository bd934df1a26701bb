"""CLIP inference shared by `curate score` and `train eval`: load a Hugging Face model folder, embed texts.

A CLIP-style model folder (config.json + weights + tokenizer + image processor, as `train` exports to
RUN/hf, or any transformers CLIP/MetaClip2 checkpoint), local or a URL (copied once per machine),
loaded offline. Embeddings are L2-normalised float32 on the CPU.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch  # this module is CLIP inference; curation imports it only where it scores (curation.score)

from core import storage
from core.errors import UserError


def model_folder(model_dir: str | os.PathLike) -> tuple[Path, str]:
    """(local folder, name for messages) of --model: a local path as it is; a URL copied once per machine
    (storage.local_copy; transformers loads only local files)."""
    url = os.fspath(model_dir)
    local = storage.is_local(url)
    where = str(storage.local_path(url)) if local else url
    with storage.errors(url, "--model"):
        if not storage.isfile(storage.join(url, "config.json")):
            raise UserError(f"--model {where}: no model there (config.json missing); "
                            "give the folder `train` exported, e.g. RUN/hf")
        return (storage.local_path(url) if local else Path(storage.local_copy(url, "--model"))), where


def load_model(model_dir: str | os.PathLike, device: str):
    """(model, tokenizer, image processor) from a Hugging Face folder (local or a URL), offline."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer  # lazy: seconds to import, needed only here

    path, where = model_folder(model_dir)
    try:
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True, backend="pil")
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"--model {where}: cannot load model, tokenizer and image processor ({e})") from e
    if not hasattr(model, "get_image_features"):
        raise UserError(f"--model {where}: {type(model).__name__} is not a CLIP-style model with image and text towers")
    return model.to(device).eval(), tokenizer, processor


def features(out) -> torch.Tensor:
    """Projected embeddings from get_*_features (a tensor, or an output with pooler_output)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@torch.inference_mode()
def embed_texts(model, tokenizer, texts: list[str], batch_size: int, device: str) -> torch.Tensor:
    """L2-normalised text embeddings, float32 on CPU."""
    context = model.config.text_config.max_position_embeddings
    out = []
    for s in range(0, len(texts), batch_size):
        tok = tokenizer(texts[s:s + batch_size], padding=True, truncation=True, max_length=context, return_tensors="pt")
        emb = features(model.get_text_features(input_ids=tok["input_ids"].to(device),
                                               attention_mask=tok["attention_mask"].to(device)))
        out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.projection_dim)
