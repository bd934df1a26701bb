"""A demo pool variant for bench_demo_search.py: POOLDIR/demo (pool, eval, metadata) + POOLDIR/TOKENIZER.

    python benchmarks/demo_search_pool.py POOLDIR IMAGES VARIANT [EN_SHARE]

VARIANT: base (the demo renderer), easy (rotation ±8°, glyph 80-95%, rarely clutter, no squash or
blur), trivial (the glyph alone in its colour, upright, centred, on black); EN_SHARE replaces the
English share of alt-texts (the other nine languages split the rest). The pool's rows stand in for
the unbalanced set (unmatched and noise rows included).
"""

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import demo_pool
from pipelines import demo_render as R

out, n, variant = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if len(sys.argv) > 4:
    en = float(sys.argv[4])
    demo_pool.LANG_WEIGHTS = {"en": en, **{l: (1 - en) / 9 for l in demo_pool.LANGS if l != "en"}}
if variant == "easy":
    from PIL import Image

    def render_glyph(glyph, rng, size=64):
        img = R._background(size, rng)
        R._clutter(img, rng, rng.choice([0, 0, 0, 0, 0, 1]))
        choices = R.fonts_with(glyph) or R.FONT_FILES[:1]
        px = int(size * rng.uniform(0.8, 0.95))
        mask = R._glyph_mask(glyph, rng.choice(choices), px, rng.uniform(-8, 8))
        R._paste(img, mask, R._glyph_colour(glyph, rng), rng, centre=True)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rng.randint(75, 92))
        return buf.getvalue()

    R.render_glyph = render_glyph
    demo_pool.render_glyph = render_glyph
if variant == "trivial":
    from PIL import Image

    def render_glyph(glyph, rng, size=64):
        img = Image.new("RGB", (size, size), (0, 0, 0))
        choices = R.fonts_with(glyph) or R.FONT_FILES[:1]
        mask = R._glyph_mask(glyph, choices[0], int(size * 0.9), 0)
        R._paste(img, mask, R.concept_colour(glyph), rng, centre=True)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    R.render_glyph = render_glyph
    demo_pool.render_glyph = render_glyph
demo_pool.make_demo_pool(out / "demo", n, 0, eval_per_class=10, progress=False)
import subprocess

subprocess.run(
    [
        sys.executable,
        "-m",
        "training.cli",
        "tokenizer",
        "--shards",
        str(out / "demo/pool/00000.tar"),
        "--vocab-size",
        "4000",
        "--out",
        str(out / "TOKENIZER"),
    ],
    check=True,
)
