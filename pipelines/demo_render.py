"""Render one demo image: a concept's symbol from a packaged font with pose, scale, colour, clutter
and background variation, so that a tiny model cannot separate every concept in the demo's budget.

Each symbol has a characteristic colour (fixed by its code point, as real emoji have one) that it
is drawn in, jittered, 19 times in 20; with 117 concepts the colours overlap, so the shape
still has to be learnt.

Fonts are matplotlib's DejaVu Sans (regular and bold) — packaged, so rendering is offline and
byte-identical for the same random state. Clutter is drawn from symbols that are not concepts
(letters, digits, punctuation) plus strokes and dots, so an image still shows exactly one concept.
"""
from __future__ import annotations

import io
import math
import random
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
CLUTTER = "ABCDEFGHKMNPRSTWXYZ0123456789#%&@§¶+=~/"


@lru_cache(maxsize=None)
def _font_path(name: str) -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


@lru_cache(maxsize=None)
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A packaged TrueType font at a pixel size (cached)."""
    return ImageFont.truetype(_font_path(name), size)


@lru_cache(maxsize=None)
def code_points(name: str) -> frozenset[int]:
    """The code points a packaged font has a glyph for (its cmap), read once per font: parsing a cmap
    takes ~0.1 s, once per glyph it was most of the pool's rendering time."""
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(_font_path(name), lazy=True).getBestCmap())


@lru_cache(maxsize=None)
def fonts_with(glyph: str) -> tuple[str, ...]:
    """The FONT_FILES that have a glyph for `glyph`, regular first."""
    return tuple(f for f in FONT_FILES if ord(glyph) in code_points(f))


def _colour(rng: random.Random, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(rng.randint(lo, hi) for _ in range(3))


def concept_colour(glyph: str) -> tuple[int, int, int]:
    """The glyph's characteristic colour (as real emoji have one): a saturated hue fixed by its code point."""
    import colorsys

    h = random.Random(f"worldclip-demo-colour:{ord(glyph)}")
    r, g, b = colorsys.hsv_to_rgb(h.random(), h.uniform(0.6, 1.0), h.uniform(0.55, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _glyph_colour(glyph: str, rng: random.Random) -> tuple[int, int, int]:
    """Usually the characteristic colour, jittered; sometimes (5%) any colour."""
    if rng.random() < 0.05:
        return _colour(rng, 0, 255)
    return tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in concept_colour(glyph))


def _muted(rng: random.Random) -> tuple[int, int, int]:
    """A desaturated background colour (grey-ish, light or dark), so the concept's colour stands out."""
    base = rng.choice([rng.randint(20, 70), rng.randint(170, 235)])
    return tuple(max(0, min(255, base + rng.randint(-20, 20))) for _ in range(3))


def _background(size: int, rng: random.Random) -> Image.Image:
    """Plain, two-colour gradient, stripes or speckle, in a random (often mid-tone) palette."""
    c1, c2 = _muted(rng), _muted(rng)
    img = Image.new("RGB", (size, size), c1)
    draw = ImageDraw.Draw(img)
    kind = rng.randrange(4)
    if kind == 1:
        for i in range(size):
            t = i / size
            draw.line([0, i, size, i], fill=tuple(int(a * (1 - t) + b * t) for a, b in zip(c1, c2)))
        img = img.rotate(rng.uniform(0, 360), resample=Image.BILINEAR, fillcolor=c1)
    elif kind == 2:
        step = rng.randint(4, 10)
        for x in range(-size, 2 * size, step):
            draw.line([x, 0, x + rng.randint(-size, size), size], fill=c2, width=rng.randint(1, 2))
    elif kind == 3:
        for _ in range(size * 2):
            x, y = rng.randrange(size), rng.randrange(size)
            draw.point((x, y), fill=c2)
    return img


def _glyph_mask(glyph: str, font_name: str, px: int, angle: float) -> Image.Image:
    """An L-mode mask of `glyph` at `px` pixels, rotated by `angle` degrees, cropped to its ink."""
    f = font(font_name, px)
    left, top, right, bottom = f.getbbox(glyph)
    w, h = max(1, right - left), max(1, bottom - top)
    side = int(math.hypot(w, h)) + 2
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).text(((side - w) / 2 - left, (side - h) / 2 - top), glyph, font=f, fill=255)
    mask = mask.rotate(angle, resample=Image.BICUBIC)
    return mask.crop(mask.getbbox() or (0, 0, side, side))


def _paste(img: Image.Image, mask: Image.Image, colour: tuple[int, int, int], rng: random.Random,
           centre: bool) -> None:
    size = img.size[0]
    mw, mh = mask.size
    span_x, span_y = max(0, size - mw), max(0, size - mh)
    if centre:
        x = int(span_x / 2 + rng.uniform(-0.3, 0.3) * span_x)
        y = int(span_y / 2 + rng.uniform(-0.3, 0.3) * span_y)
    else:
        x, y = rng.randint(-mw // 2, size - mw // 2), rng.randint(-mh // 2, size - mh // 2)
    img.paste(Image.new("RGB", mask.size, colour), (x, y), mask)


def _clutter(img: Image.Image, rng: random.Random, n: int) -> None:
    """Non-concept symbols, strokes and blobs scattered over the image (drawn under the concept)."""
    size = img.size[0]
    draw = ImageDraw.Draw(img)
    for _ in range(n):
        colour = _colour(rng, 0, 255)
        kind = rng.randrange(3)
        if kind == 0:
            mask = _glyph_mask(rng.choice(CLUTTER), FONT_FILES[0], rng.randint(size // 6, size // 3),
                               rng.uniform(-60, 60))
            _paste(img, mask, colour, rng, centre=False)
        elif kind == 1:
            pts = [(rng.uniform(0, size), rng.uniform(0, size)) for _ in range(2)]
            draw.line(pts, fill=colour, width=rng.randint(1, 3))
        else:
            x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1, size / 10)
            draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=1)


def render_glyph(glyph: str, rng: random.Random, size: int = 64) -> bytes:
    """JPEG bytes: `glyph` (one concept) with random pose, scale, colour, clutter and background."""
    img = _background(size, rng)
    _clutter(img, rng, rng.choice([0, 0, 0, 0, 1, 2]))
    choices = fonts_with(glyph) or FONT_FILES[:1]
    px = int(size * rng.uniform(0.65, 0.95))
    mask = _glyph_mask(glyph, rng.choice(choices), px, rng.uniform(-20, 20))
    if rng.random() < 0.3:  # perspective-ish squash
        mask = mask.resize((max(1, int(mask.size[0] * rng.uniform(0.7, 1.0))), mask.size[1]), Image.BILINEAR)
    _paste(img, mask, _glyph_colour(glyph, rng), rng, centre=True)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=rng.randint(60, 92))
    return buf.getvalue()
