"""The demo's concepts: Unicode symbols with their CLDR names from the `emoji` package, in 10 languages.

Each concept is one symbol that DejaVu Sans (shipped with matplotlib) draws, named by the `emoji`
package's multilingual CLDR short names (e.g. ☀ = "sun", "Sonne"→"sonne", "sol", "soleil", "sole",
"солнце", "太阳", "太陽", "태양", "شمس"). Names are used exactly as packaged (underscores read as spaces),
so they are real names, never machine-made. Arrows and plain squares/circles are left out: under
rotation and recolouring they would not be visually distinct.
"""
from __future__ import annotations

from functools import lru_cache

# 117 symbols: zodiac, objects, signs, animal and human faces (order is arbitrary; the Zipf rank of
# each concept is drawn per pool seed, see demo_pool.concept_ranks).
GLYPHS = ("♈♉♊♋♌♍♎♏♐♑♒♓✈⚗⚓⚛⚖☣✒☑✔♟☁♣⚰☄⚔♦‼✴✳✉⁉♀⚜⚱⚙⚒❣♥⚡☕♨☝♾ℹ🃏⌨✝♂⚕✖☦☮✏☢♻✂☘☠❄☃♠❇☪"
          "✡☀☎™⚧☂✌⚠☸♿✍☯🐱🐮🐵🐭😠😲😁😕😢😘😷😂😛😶😨😳☹😀😇😍😈😎😏😴😐😉😑😭😱😵😮😔😒😫😺😿🙀😻😽😾")
# Ten languages the emoji package names every symbol in, with zero-shot templates in training.eval_templates.
LANGS = ["en", "de", "es", "fr", "it", "ru", "zh", "ja", "ko", "ar"]


def _emoji_key(data: dict, glyph: str) -> str:
    """The EMOJI_DATA key of `glyph` (bare, or with the emoji variation selector U+FE0F)."""
    for key in (glyph, glyph + "\ufe0f"):
        if key in data:
            return key
    raise KeyError(f"{glyph!r} (U+{ord(glyph):04X}) is not in the emoji package's data")


@lru_cache(maxsize=1)
def names() -> dict[str, list[str]]:
    """{lang: [CLDR name of each glyph, in GLYPHS order]} from the `emoji` package."""
    import emoji

    emoji.config.load_language()
    data = emoji.EMOJI_DATA
    return {lang: [data[_emoji_key(data, g)][lang].strip(":").replace("_", " ") for g in GLYPHS] for lang in LANGS}


def english() -> list[str]:
    """English names in GLYPHS order (what figures and tables label concepts with)."""
    return names()["en"]
