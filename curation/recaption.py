"""Caption images with a local image-to-text checkpoint, and fuse captions with alt-texts (VeCLIP).

`Captioner` loads anything `AutoModelForImageTextToText` loads from a folder (BLIP, Florence-2,
LLaVA-style, VisionEncoderDecoder) with its processor, or, when the folder has no multimodal
processor (VisionEncoderDecoder), its image processor and tokenizer. `Fuser` loads a causal LM
(`AutoModelForCausalLM`) and merges each alt-text with its generated caption through FUSE_PROMPT.
Captions exclude the prompt (models that echo it have it cut). Both decode greedily unless told to sample;
sampling is seeded per part, so output depends on (seed, part) and not on which worker ran it. Nothing is
downloaded: folders load with local_files_only.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

# VeCLIP's fusion step (Lai et al. 2024, "VeCLIP", sec. 3.2) asks an LLM to merge the noisy alt-text
# (knowledge: names, places) with the captioner's description (visual content) into one caption.
FUSE_PROMPT = ("Merge the two descriptions of one image into a single short caption. Keep the names, places "
               "and facts of the first and the visual details of the second; do not add anything else.\n"
               "Alt-text: {alt}\nImage description: {caption}\nMerged caption:")


@dataclass
class Decoding:
    """Generation options shared by captioning and fusion."""

    max_new_tokens: int = 40
    num_beams: int = 1
    do_sample: bool = False
    seed: int = 0

    def kwargs(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams, "do_sample": self.do_sample}


def fill_prompt(prompt: str, alt: str, caption: str) -> str:
    """The prompt with {alt} and {caption} replaced in one pass (never str.format on a user's string)."""
    return re.sub(r"\{(alt|caption)\}", lambda m: alt if m.group(1) == "alt" else caption, prompt)


def _not_loadable(flag: str, folder: str, kind: str, e: Exception) -> UserError:
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return UserError(f"{flag} {folder}: not a loadable {kind} checkpoint ({reason}); give a folder written by "
                     "save_pretrained (config.json, weights, processor/tokenizer files)")


def _check_folder(flag: str, folder: str) -> Path:
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise UserError(f"{flag} {folder}: no config.json there; give a local model folder written by save_pretrained")
    return path


def pick_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


class Captioner:
    """An image-to-text model with its pre/post-processing; `caption(images)` -> one string each."""

    def __init__(self, folder: str, prompt: str | None = None, decoding: Decoding | None = None,
                 device: str | None = None):
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

        path = _check_folder("--model", folder)
        self.prompt, self.decoding, self.device = prompt, decoding or Decoding(), pick_device(device)
        try:
            self.model = AutoModelForImageTextToText.from_pretrained(str(path), local_files_only=True)
            processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
            if hasattr(processor, "image_processor"):
                self.processor, self.images, self.tokenizer = processor, None, processor.tokenizer
            else:
                self.processor = None
                self.images = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
                self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _not_loadable("--model", folder, "image-to-text", e) from e
        self.model.to(self.device).eval()
        self.torch = torch

    def _inputs(self, images: list) -> dict:
        if self.processor is not None:
            kw = {"text": [self.prompt] * len(images), "padding": True} if self.prompt else {}
            return dict(self.processor(images=images, return_tensors="pt", **kw))
        inputs = dict(self.images(images=images, return_tensors="pt"))
        if self.prompt:  # a decoder prefix for VisionEncoderDecoder-style models
            ids = self.tokenizer([self.prompt] * len(images), return_tensors="pt", add_special_tokens=False).input_ids
            start = self.model.config.decoder_start_token_id
            inputs["decoder_input_ids"] = self.torch.cat([self.torch.full((len(images), 1), start), ids], 1)
        return inputs

    def _to_device(self, v):
        """A tensor on the model's device; pixel values also in its dtype (fp16/bf16 checkpoints)."""
        if not hasattr(v, "to"):
            return v
        return v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device)

    def caption(self, images: list, seed: int = 0) -> list[str]:
        """Captions of PIL images, in order."""
        inputs = {k: self._to_device(v) for k, v in self._inputs(images).items()}
        self.torch.manual_seed(seed)
        with self.torch.inference_mode():
            out = self.model.generate(**inputs, **self.decoding.kwargs())
        if "input_ids" in inputs:
            out = out[:, echoed_prompt(out, inputs["input_ids"]):]
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def echoed_prompt(out, input_ids) -> int:
    """How many leading output tokens repeat the (same-for-every-image) prompt: all of it (LLaVA-style
    decoder-only models), all but its final separator (BLIP), or none (encoder-decoder models)."""
    n = input_ids.shape[1]
    for k in (n, n - 1):
        if 0 < k <= out.shape[1] and bool((out[:, :k] == input_ids[:, :k]).all()):
            return k
    return 0


class Fuser:
    """A causal LM that merges (alt-text, caption) pairs into one caption with FUSE_PROMPT."""

    def __init__(self, folder: str, prompt: str = FUSE_PROMPT, decoding: Decoding | None = None,
                 device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = _check_folder("--fuse-with", folder)
        self.prompt, self.decoding, self.device = prompt, decoding or Decoding(), pick_device(device)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _not_loadable("--fuse-with", folder, "causal language model", e) from e
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.to(self.device).eval()
        self.torch = torch

    def fuse(self, alts: list[str], captions: list[str], seed: int = 0) -> list[str]:
        """One merged caption per (alt-text, caption) pair; the first line of the LM's continuation."""
        prompts = [fill_prompt(self.prompt, a, c) for a, c in zip(alts, captions)]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        self.torch.manual_seed(seed)
        with self.torch.inference_mode():
            out = self.model.generate(**enc, **self.decoding.kwargs(), pad_token_id=self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return [(t.strip().splitlines() or [""])[0].strip() for t in texts]


def open_image(data: bytes):
    """PIL RGB image from bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")
