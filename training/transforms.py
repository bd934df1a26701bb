"""Image transforms as CLIP/OpenCLIP use them, in PIL + numpy (no torchvision).

train: random resized crop (scale 0.9-1.0, aspect 3/4-4/3, bicubic), as OpenCLIP's default;
eval: resize the shorter side to `image_size` (bicubic), centre crop. Both convert to RGB and
normalise with CLIP's mean/std. The train crop draws from a numpy Generator the caller passes,
so a sample's augmentation is a function of its seed alone (exact resume, any worker count).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TRAIN_SCALE = (0.9, 1.0)
TRAIN_RATIO = (3 / 4, 4 / 3)

_MEAN = np.array(CLIP_MEAN, dtype=np.float32) * 255.0
_INV_STD = 1.0 / (np.array(CLIP_STD, dtype=np.float32) * 255.0)


def to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """RGB uint8 image (HWC) -> normalised float32 CHW tensor."""
    a = np.asarray(image, dtype=np.float32)
    a = (a - _MEAN) * _INV_STD
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] batch -> normalised float32 [N, 3, H, W] on the batch's device.

    The loader ships uint8 (4x less inter-process and host-to-device traffic) and this runs on the GPU.
    """
    mean = torch.tensor(_MEAN, device=images.device)
    inv_std = torch.tensor(_INV_STD, device=images.device)
    return ((images.float() - mean) * inv_std).permute(0, 3, 1, 2).contiguous()


def crop_box(width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A random (left, top, w, h) with area share in TRAIN_SCALE and log-uniform aspect in TRAIN_RATIO."""
    area = width * height
    log_ratio = (math.log(TRAIN_RATIO[0]), math.log(TRAIN_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*TRAIN_SCALE)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    in_ratio = width / height
    if in_ratio < TRAIN_RATIO[0]:
        w, h = width, int(round(width / TRAIN_RATIO[0]))
    elif in_ratio > TRAIN_RATIO[1]:
        h, w = height, int(round(height * TRAIN_RATIO[1]))
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def train_crop(image: Image.Image, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Random resized crop to image_size x image_size, RGB, as uint8 HWC."""
    image = image.convert("RGB")
    left, top, w, h = crop_box(image.width, image.height, rng)
    image = image.resize((image_size, image_size), Image.BICUBIC, box=(left, top, left + w, top + h))
    return np.asarray(image)


def train_image(image: Image.Image, image_size: int, rng: np.random.Generator) -> torch.Tensor:
    """Random resized crop to image_size x image_size, RGB, normalised CHW."""
    return to_tensor(train_crop(image, image_size, rng))


def eval_image(image: Image.Image, image_size: int) -> torch.Tensor:
    """Shorter side to image_size (bicubic), centre crop, RGB, normalised (= CLIPImageProcessor)."""
    image = image.convert("RGB")
    scale = image_size / min(image.width, image.height)
    w = max(image_size, int(image.width * scale))
    h = max(image_size, int(image.height * scale))
    if (w, h) != image.size:
        image = image.resize((w, h), Image.BICUBIC)
    left, top = (w - image_size) // 2, (h - image_size) // 2
    return to_tensor(image.crop((left, top, left + image_size, top + image_size)))


def image_transform(image_size: int, train: bool) -> Callable[..., torch.Tensor]:
    """`f(image, rng=None) -> tensor`; train uses `rng` (a fresh unseeded one if None)."""
    if not train:
        return lambda image, rng=None: eval_image(image, image_size)
    return lambda image, rng=None: train_image(image, image_size, rng if rng is not None else np.random.default_rng())


def clip_image_processor(image_size: int):
    """A transformers CLIP image processor equivalent to the eval transform, for export."""
    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    return Processor(
        do_resize=True, size={"shortest_edge": image_size}, resample=3,
        do_center_crop=True, crop_size={"height": image_size, "width": image_size},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD), do_convert_rgb=True,
    )
