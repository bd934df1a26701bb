"""The two towers of a MetaClip2Model by parameter name: lock the image tower (LiT), initialise towers from a folder.

`--init-from DIR` reads a Hugging Face folder, local or a URL (s3://, gs://, hf://, file://: copied once per
machine by core.storage.local_copy, as --tokenizer), of a MetaClip2Model or CLIPModel, or one tower of either
(`model.safetensors`, sharded `model.safetensors.index.json`, or `pytorch_model.bin`). Each tower, and the
loss head (logit scale, SigLIP's bias), is copied when the folder holds all of its weights with the same
shapes and activation as the --model preset; a tower the folder holds only in part is an error. SigLIP's
bias is read from `config.json`'s `logit_bias`, where `train` exports it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from core import storage
from core.errors import UserError

TOWERS = {"vision": ("vision_model.", "visual_projection."), "text": ("text_model.", "text_projection.")}


def tower_of(name: str) -> str:
    """'vision', 'text' or 'head' (logit scale and bias) for a parameter name."""
    return next((t for t, prefixes in TOWERS.items() if name.startswith(prefixes)), "head")


def lock_image_tower(model: nn.Module) -> int:
    """Freeze the image tower and its projection (LiT); returns the number of frozen parameters."""
    frozen = 0
    for name, p in model.named_parameters():
        if tower_of(name) == "vision":
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def _weight_files(folder: Path, source: str) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return sorted({folder / f for f in json.loads(index.read_text())["weight_map"].values()})
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    raise UserError(f"--init-from {source}: no model.safetensors or pytorch_model.bin; "
                    "pass a Hugging Face model folder (e.g. RUN/hf)")


def read_weights(folder: Path, wanted: set[str], source: str) -> dict[str, torch.Tensor]:
    """The tensors named in `wanted` that the folder's weight files hold (`source`: the folder as given)."""
    from safetensors import safe_open

    out: dict[str, torch.Tensor] = {}
    for f in _weight_files(folder, source):
        if f.suffix == ".safetensors":
            with safe_open(str(f), framework="pt") as st:
                out.update({k: st.get_tensor(k) for k in st.keys() if k in wanted})
        else:
            out.update({k: v for k, v in torch.load(f, map_location="cpu", weights_only=True).items() if k in wanted})
    return out


def _config(folder: Path) -> dict:
    """The folder's config.json ({} without one)."""
    path = folder / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _activations(folder: Path) -> dict[str, str]:
    """hidden_act per tower from the folder's config.json (CLIP's default, quick_gelu, where it is not written)."""
    conf = _config(folder)
    if not conf:
        return {}
    if "vision_config" in conf or "text_config" in conf:
        return {t: (conf.get(f"{t}_config") or {}).get("hidden_act", "quick_gelu") for t in TOWERS}
    tower = "vision" if "patch_size" in conf else "text"
    return {tower: conf.get("hidden_act", "quick_gelu")}


def _checked_parts(model: nn.Module, own: dict, found: dict, acts: dict[str, str], folder: str) -> list[str]:
    """Parts ('vision', 'text', 'head') that `found` holds completely and that fit `model`; UserError otherwise."""
    parts = []
    for part in ("vision", "text", "head"):
        names = [k for k in own if tower_of(k) == part]
        missing = [k for k in names if k not in found]
        if len(missing) == len(names) or (missing and part == "head"):
            continue
        if missing:
            raise UserError(f"--init-from {folder}: the {part} tower is incomplete (no {missing[0]}); "
                            "pass a folder with the whole tower")
        act = getattr(model.config, f"{part}_config").hidden_act if part != "head" else None
        if act and acts.get(part, act) != act:
            raise UserError(f"--init-from {folder}: its {part} tower uses {acts[part]} but the --model preset uses "
                            f"{act}; choose the matching preset")
        bad = next((k for k in names if found[k].shape != own[k].shape), None)
        if bad:
            raise UserError(f"--init-from {folder}: {bad} has shape {tuple(found[bad].shape)}, the --model preset "
                            f"{tuple(own[bad].shape)}; choose the preset (and --image-size, tokenizer) it was trained "
                            "with")
        parts.append(part)
    return parts


def init_from(model: nn.Module, folder: str) -> list[str]:
    """Copy the towers (and loss head) that `folder` (a local folder or a URL) holds completely into `model`;
    returns their names."""
    path = Path(storage.local_copy(folder, "--init-from"))
    if path.is_file():
        raise UserError(f"--init-from {folder}: a file, but a folder is needed; pass the Hugging Face model folder "
                        f"that holds it ({path.parent})")
    if not path.is_dir():
        raise UserError(f"--init-from {folder}: folder not found; pass a Hugging Face model folder or its URL "
                        "(e.g. RUN/hf)")
    own = model.state_dict()
    found = read_weights(path, set(own), folder)
    bias = _config(path).get("logit_bias")
    if "logit_bias" in own and "logit_bias" not in found and bias is not None:
        found["logit_bias"] = torch.tensor(float(bias))
    parts = _checked_parts(model, own, found, _activations(path), folder)
    if not parts:
        raise UserError(f"--init-from {folder}: holds no weights of a MetaClip2/CLIP tower")
    with torch.no_grad():
        for k, v in own.items():
            if tower_of(k) in parts:
                v.copy_(found[k])
    return parts
