"""Model presets: MetaCLIP 2 "worldwide" architectures as transformers MetaClip2Config.

Shapes follow MetaCLIP 2's `src/mini_clip/model_configs/ViT-*-worldwide.json` (OpenCLIP layout):
vision heads = width / head_width (64 unless given), MLP = mlp_ratio x width (4 unless given),
text MLP = 4 x width, context 77, quick_gelu. The vocabulary comes from the tokenizer
(XLM-V: 901,629). `tiny` is a small model for tests and the demo.
"""
from __future__ import annotations

from dataclasses import dataclass

from curation.common import UserError

CONTEXT_LENGTH = 77


@dataclass(frozen=True)
class Preset:
    """One CLIP architecture in OpenCLIP terms."""

    embed_dim: int
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    vision_mlp: int
    text_width: int
    text_layers: int
    text_heads: int


def _vit(embed, image, patch, width, layers, text_width, text_heads, text_layers, head_width=64, mlp_ratio=4.0) -> Preset:
    return Preset(
        embed_dim=embed, image_size=image, patch_size=patch,
        vision_width=width, vision_layers=layers, vision_heads=width // head_width,
        vision_mlp=int(round(width * mlp_ratio)),
        text_width=text_width, text_layers=text_layers, text_heads=text_heads,
    )


PRESETS: dict[str, Preset] = {
    "tiny": Preset(embed_dim=64, image_size=32, patch_size=8, vision_width=64, vision_layers=2,
                   vision_heads=2, vision_mlp=256, text_width=64, text_layers=2, text_heads=2),
    "S-16": _vit(384, 224, 16, 384, 12, 384, 6, 12),
    "M-16": _vit(512, 224, 16, 512, 12, 512, 8, 12),
    "B-32": _vit(512, 224, 32, 768, 12, 512, 8, 12),
    "B-16": _vit(512, 224, 16, 768, 12, 512, 8, 12),
    "L-14": _vit(768, 224, 14, 1024, 24, 768, 12, 12),
    "H-14": _vit(1024, 224, 14, 1280, 32, 1024, 16, 24, head_width=80),
    "bigG-14": _vit(1280, 224, 14, 1664, 48, 1280, 20, 32, head_width=104, mlp_ratio=4.9231),
}


def build_config(preset: str, vocab_size: int, pad_token_id: int = 1, bos_token_id: int = 0,
                 eos_token_id: int = 2, image_size: int | None = None):
    """MetaClip2Config for a preset; token ids default to XLM-V's (<s>=0, <pad>=1, </s>=2)."""
    from transformers import MetaClip2Config

    if preset not in PRESETS:
        raise UserError(f"--model {preset!r} is not a preset; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    size = image_size or p.image_size
    if size % p.patch_size:
        raise UserError(f"--image-size {size} is not a multiple of {preset}'s patch size {p.patch_size}")
    text = dict(
        vocab_size=vocab_size, hidden_size=p.text_width, intermediate_size=4 * p.text_width,
        projection_dim=p.embed_dim, num_hidden_layers=p.text_layers, num_attention_heads=p.text_heads,
        max_position_embeddings=CONTEXT_LENGTH, hidden_act="quick_gelu",
        pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
    )
    vision = dict(
        hidden_size=p.vision_width, intermediate_size=p.vision_mlp, projection_dim=p.embed_dim,
        num_hidden_layers=p.vision_layers, num_attention_heads=p.vision_heads,
        image_size=size, patch_size=p.patch_size, hidden_act="quick_gelu",
    )
    return MetaClip2Config(text_config=text, vision_config=vision, projection_dim=p.embed_dim)


def build_model(preset: str, vocab_size: int, pad_token_id: int = 1, bos_token_id: int = 0,
                eos_token_id: int = 2, image_size: int | None = None):
    """A freshly initialised MetaClip2Model for a preset."""
    from transformers import MetaClip2Model

    return MetaClip2Model(build_config(preset, vocab_size, pad_token_id, bos_token_id, eos_token_id, image_size))
