"""MetaClip2Config / MetaClip2Model for a preset of training.presets, and parameter counts."""
from __future__ import annotations

from core.errors import UserError
from training.presets import CONTEXT_LENGTH, PRESETS, Preset  # noqa: F401  (re-exported)


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
        max_position_embeddings=CONTEXT_LENGTH, hidden_act=p.act,
        pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
    )
    vision = dict(
        hidden_size=p.vision_width, intermediate_size=p.vision_mlp, projection_dim=p.embed_dim,
        num_hidden_layers=p.vision_layers, num_attention_heads=p.vision_heads,
        image_size=size, patch_size=p.patch_size, hidden_act=p.act,
    )
    return MetaClip2Config(text_config=text, vision_config=vision, projection_dim=p.embed_dim)


def build_model(preset: str, vocab_size: int, pad_token_id: int = 1, bos_token_id: int = 0,
                eos_token_id: int = 2, image_size: int | None = None):
    """A freshly initialised MetaClip2Model for a preset."""
    from transformers import MetaClip2Model

    return MetaClip2Model(build_config(preset, vocab_size, pad_token_id, bos_token_id, eos_token_id, image_size))


def parameter_counts(model) -> dict[str, int]:
    """Parameters of the whole model and of each tower (with its projection)."""
    counts = {"total": 0, "vision": 0, "text": 0}
    for name, p in model.named_parameters():
        counts["total"] += p.numel()
        tower = ("vision" if name.startswith(("vision_model.", "visual_projection."))
                 else "text" if name.startswith(("text_model.", "text_projection.")) else None)
        if tower:
            counts[tower] += p.numel()
    return counts
