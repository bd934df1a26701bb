"""Export of an `--fsdp` model to RUN/hf: each weight gathered once and streamed into model.safetensors.

Every rank takes part in each tensor's all-gather; rank 0 writes the safetensors header (names, dtypes
and global shapes are known before any gather) and then each full tensor's bytes as it arrives, so it
holds at most one whole tensor at a time, never the whole model. The folder is otherwise export_hf's; as there,
SigLIP's bias (a replicated scalar) goes to `config.logit_bias`, not into the weights.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch

from training.export import export_hf, unwrap
from training.fsdp import full_value

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32"}


def safetensors_header(tensors: dict[str, torch.Tensor]) -> bytes:
    """Length-prefixed JSON header, padded to 8 bytes, for `tensors` written in order."""
    meta, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, t in tensors.items():
        size = t.numel() * t.element_size()
        meta[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    header = json.dumps(meta, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header


def stream_safetensors(tensors: dict[str, torch.Tensor], path: Path | None) -> None:
    """Collective: gather each tensor in turn; write it to `path` (rank 0) or drop it (other ranks: path None)."""
    f = open(path, "wb") if path is not None else None
    try:
        if f:
            f.write(safetensors_header(tensors))
        for t in tensors.values():
            full = full_value(t.detach()).contiguous().cpu()
            if f:
                f.write(full.reshape(-1).view(torch.uint8).numpy().tobytes())
            del full
        if f:
            f.flush()
            os.fsync(f.fileno())
    finally:
        if f:
            f.close()


def export_sharded(model, tokenizer_dir: str | os.PathLike, image_size: int, out_dir: str | os.PathLike,
                   is_main: bool) -> Path:
    """Collective: RUN/hf from a fully_shard-ed MetaClip2Model (the same folder export_hf writes)."""
    from training.loss import hf_state_dict

    bare = unwrap(model)
    tensors = hf_state_dict(bare) or dict(bare.state_dict())
    if not is_main:
        stream_safetensors(tensors, None)
        return Path(out_dir)

    def write_weights(tmp: Path) -> None:
        bare.config.save_pretrained(tmp)
        stream_safetensors(tensors, tmp / "model.safetensors")

    return export_hf(bare, tokenizer_dir, image_size, out_dir, write_weights=write_weights)
