"""Architecture presets: MetaCLIP 2's released `ViT-*-worldwide*.json` configs, in OpenCLIP terms.

Source: facebookresearch/MetaCLIP `src/mini_clip/model_configs/ViT-<name>-worldwide.json`. OpenCLIP
derives the rest: vision heads = width / head_width (64 unless given), vision MLP = int(width x
mlp_ratio) (4 unless given), text MLP = 4 x width, context 77, and the activation is exact GELU unless
the config sets `quick_gelu` (only ViT-H-14-quickgelu-worldwide does). The vocabulary comes from the
tokenizer (XLM-V: 901,629). The mT5 variants (another tokenizer) are not presets; `tiny` is a small
model for tests and the demo.
"""
from __future__ import annotations

from dataclasses import dataclass

CONTEXT_LENGTH = 77


@dataclass(frozen=True)
class Preset:
    """One CLIP architecture: shapes of both towers and their activation."""

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
    act: str = "gelu"


def _vit(embed: int, image: int, patch: int, width: int, layers: int, text_width: int, text_heads: int,
         text_layers: int, head_width: int = 64, mlp_ratio: float = 4.0, quick_gelu: bool = False) -> Preset:
    """A Preset from the fields of a released config, derived as OpenCLIP does."""
    return Preset(embed_dim=embed, image_size=image, patch_size=patch, vision_width=width, vision_layers=layers,
                  vision_heads=width // head_width, vision_mlp=int(width * mlp_ratio), text_width=text_width,
                  text_layers=text_layers, text_heads=text_heads, act="quick_gelu" if quick_gelu else "gelu")


_S16 = dict(embed=384, patch=16, width=384, layers=12, text_width=384, text_heads=6, text_layers=12)
_M16 = dict(embed=512, patch=16, width=512, layers=12, text_width=512, text_heads=8, text_layers=12)
_B32 = dict(embed=512, patch=32, width=768, layers=12, text_width=512, text_heads=8, text_layers=12)
_B16 = dict(embed=512, patch=16, width=768, layers=12, text_width=512, text_heads=8, text_layers=12)
_L14 = dict(embed=768, patch=14, width=1024, layers=24, text_width=768, text_heads=12, text_layers=12)
_H14 = dict(embed=1024, patch=14, width=1280, layers=32, text_width=1024, text_heads=16, text_layers=24, head_width=80)
_G14 = dict(embed=1280, patch=14, width=1664, layers=48, text_width=1280, text_heads=20, text_layers=32, head_width=104,
            mlp_ratio=4.9231)

PRESETS: dict[str, Preset] = {
    "tiny": Preset(embed_dim=64, image_size=32, patch_size=8, vision_width=64, vision_layers=2,
                   vision_heads=2, vision_mlp=256, text_width=64, text_layers=2, text_heads=2),
    "S-16": _vit(image=224, **_S16),
    "S-16-384": _vit(image=384, **_S16),
    "M-16": _vit(image=224, **_M16),
    "M-16-384": _vit(image=384, **_M16),
    "B-32": _vit(image=224, **_B32),
    "B-32-384": _vit(image=384, **_B32),
    "B-16": _vit(image=224, **_B16),
    "B-16-384": _vit(image=384, **_B16),
    "L-14": _vit(image=224, **_L14),
    "L-14-378": _vit(image=378, **_L14),
    "H-14": _vit(image=224, **_H14),
    "H-14-quickgelu": _vit(image=224, quick_gelu=True, **_H14),
    "H-14-378": _vit(image=378, **_H14),
    "bigG-14": _vit(image=224, **_G14),
    "bigG-14-378": _vit(image=378, **_G14),
    "bigG-14-392": _vit(image=392, **_G14),
}
